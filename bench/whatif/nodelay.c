/* What-if shim for the benchmarks (bench/run.sh builds it when a C compiler exists):
 * LD_PRELOAD it into `par serve` to set TCP_NODELAY on every accepted connection, which
 * PAR does not do yet. Measures what the fix suggested in docs/performance.md would buy
 * without changing PAR. Unix sockets reject the option; the error is ignored. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags) {
  static int (*real)(int, struct sockaddr *, socklen_t *, int);
  if (!real) real = (int (*)(int, struct sockaddr *, socklen_t *, int))dlsym(RTLD_NEXT, "accept4");
  int conn = real(fd, addr, len, flags);
  if (conn >= 0) {
    int one = 1;
    setsockopt(conn, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  return conn;
}
