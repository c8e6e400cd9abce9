// A real OpenID provider (npm oidc-provider) on loopback, for PAR's auth tests.
//
// Usage: node server.mjs [--port N] [--keys-out FILE]
//   --port / OIDC_PORT          port on 127.0.0.1; 0 (default) picks a free one
//   --keys-out / OIDC_KEYS_OUT  write the signing keys to FILE as JSON, newest first:
//                               {"keys": [{"kid", "alg", "pem" (PKCS#8), "public_pem" (SPKI)}]},
//                               so tests can forge tokens signed by the issuer's own key for
//                               cases the provider will not mint (missing exp, nbf in the future)
//   --exit-on-stdin-eof         stop when stdin closes (a test harness that dies takes us with it)
//   --tls-cert FILE --tls-key FILE
//                               serve HTTPS with this PEM certificate (chain) and key
//
// Prints `LISTENING <issuer-url>` on stdout once ready. Issuer = http(s)://127.0.0.1:<port>.
//
// Tokens: client-credentials grant at the token endpoint from discovery, with a resource
// indicator. The access token is a JWT whose `aud` is the resource indicator without its
// query; two test knobs ride in that query: `alg` (RS256 default, ES256, EdDSA) and `ttl`
// (seconds). Example: resource=urn:par:api?alg=ES256&ttl=1 gives aud "urn:par:api".
//
// Clients (client_secret_basic or client_secret_post) and the claims their tokens carry:
//   par-test / par-test-secret      roles ["analyst"], realm_access.roles ["analyst","reader"], tenant "acme"
//   par-ops / par-ops-secret        roles ["ops"], realm_access.roles ["ops"], tenant "acme"
//   other-client / other-secret     roles ["analyst"], tenant "globex"
// Scopes a client may ask for: "agents:invoke agents:admin".
//
// Test-only endpoints (loopback only, never part of a real provider):
//   POST /__rotate[?alg=RS256]  generate a new signing key for alg and publish it FIRST in the
//                               JWKS (old keys stay published, so old tokens still verify);
//                               new tokens of that alg are signed with it. Answers {"kid","alg"}.
//   POST /__jwks_delay?ms=N     delay every JWKS response by N ms (0 to stop): a slow issuer.
//   GET  /__stats               {"jwks_requests": n, "discovery_requests": n}
//
// oidc-provider fixes its keystore at construction, so rotation builds a new Provider with
// the new key list behind the same HTTP server; clients and config are unchanged.

import http from 'node:http';
import https from 'node:https';
import fs from 'node:fs';
import crypto from 'node:crypto';
import { parseArgs } from 'node:util';

import Provider from 'oidc-provider';
import * as jose from 'jose';

const { values: args } = parseArgs({
  options: {
    port: { type: 'string', default: process.env.OIDC_PORT ?? '0' },
    'keys-out': { type: 'string', default: process.env.OIDC_KEYS_OUT },
    'exit-on-stdin-eof': { type: 'boolean', default: false },
    'tls-cert': { type: 'string' },
    'tls-key': { type: 'string' },
  },
});

const SCOPES = 'agents:invoke agents:admin';
const CLIENTS = {
  'par-test': {
    secret: 'par-test-secret',
    claims: { roles: ['analyst'], realm_access: { roles: ['analyst', 'reader'] }, tenant: 'acme' },
  },
  'par-ops': {
    secret: 'par-ops-secret',
    claims: { roles: ['ops'], realm_access: { roles: ['ops'] }, tenant: 'acme' },
  },
  'other-client': {
    secret: 'other-secret',
    claims: { roles: ['analyst'], tenant: 'globex' },
  },
};
const ALGS = ['RS256', 'ES256', 'EdDSA'];

const keys = []; // newest first: { kid, alg, privateJwk, pem }
const stats = { jwks_requests: 0, discovery_requests: 0 };
let jwksDelayMs = 0;

async function newKey(alg) {
  const opts = alg === 'RS256' ? { modulusLength: 2048, extractable: true } : { extractable: true };
  const { privateKey, publicKey } = await jose.generateKeyPair(alg, opts);
  const jwk = await jose.exportJWK(privateKey);
  const kid = `${alg.toLowerCase()}-${crypto.randomBytes(6).toString('hex')}`;
  return {
    kid,
    alg,
    privateJwk: { ...jwk, kid, alg, use: 'sig' },
    pem: await jose.exportPKCS8(privateKey),
    publicPem: await jose.exportSPKI(publicKey),
  };
}

function writeKeys() {
  if (!args['keys-out']) return;
  const out = { keys: keys.map(({ kid, alg, pem, publicPem }) => ({ kid, alg, pem, public_pem: publicPem })) };
  fs.writeFileSync(args['keys-out'], JSON.stringify(out, null, 2), { mode: 0o600 });
}

function knobs(resourceIndicator) {
  const url = new URL(resourceIndicator);
  const alg = url.searchParams.get('alg') ?? 'RS256';
  const ttl = Number(url.searchParams.get('ttl') ?? '300');
  url.search = '';
  return { audience: url.href, alg, ttl };
}

function buildProvider(issuer) {
  const provider = new Provider(issuer, {
    clients: Object.entries(CLIENTS).map(([id, c]) => ({
      client_id: id,
      client_secret: c.secret,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      scope: SCOPES,
    })),
    jwks: { keys: keys.map((k) => k.privateJwk) },
    scopes: SCOPES.split(' '),
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: { enabled: false },
      resourceIndicators: {
        enabled: true,
        defaultResource: async () => undefined,
        useGrantedResource: async () => true,
        getResourceServerInfo: async (_ctx, resourceIndicator) => {
          const { audience, alg, ttl } = knobs(resourceIndicator);
          return {
            scope: SCOPES,
            audience,
            accessTokenTTL: ttl,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg } },
          };
        },
      },
    },
    extraTokenClaims: async (_ctx, token) => CLIENTS[token.clientId]?.claims,
  });
  provider.on('server_error', (_ctx, err) => console.error('oidc server_error', err));
  return provider;
}

function json(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

async function testEndpoint(req, res, url, state) {
  if (req.method === 'POST' && url.pathname === '/__rotate') {
    const alg = url.searchParams.get('alg') ?? 'RS256';
    if (!ALGS.includes(alg)) return json(res, 400, { error: `alg must be one of ${ALGS}` });
    const key = await newKey(alg);
    keys.unshift(key);
    writeKeys();
    state.provider = buildProvider(state.issuer);
    return json(res, 200, { kid: key.kid, alg });
  }
  if (req.method === 'POST' && url.pathname === '/__jwks_delay') {
    jwksDelayMs = Number(url.searchParams.get('ms') ?? '0');
    return json(res, 200, { ms: jwksDelayMs });
  }
  if (req.method === 'GET' && url.pathname === '/__stats') return json(res, 200, stats);
  return json(res, 404, { error: 'not found' });
}

async function main() {
  for (const alg of ALGS) keys.push(await newKey(alg));
  writeKeys();

  const state = { issuer: undefined, provider: undefined };
  const tls = args['tls-cert'] && args['tls-key'];
  const handler = async (req, res) => {
    try {
      const url = new URL(req.url, state.issuer);
      if (url.pathname.startsWith('/__')) return await testEndpoint(req, res, url, state);
      if (url.pathname === '/.well-known/openid-configuration') stats.discovery_requests += 1;
      if (url.pathname === '/jwks') {
        stats.jwks_requests += 1;
        if (jwksDelayMs > 0) await new Promise((r) => setTimeout(r, jwksDelayMs));
      }
      return state.provider.callback()(req, res);
    } catch (err) {
      console.error('oidc test server error', err);
      if (!res.headersSent) json(res, 500, { error: 'internal' });
    }
  };
  const server = tls
    ? https.createServer(
      { cert: fs.readFileSync(args['tls-cert']), key: fs.readFileSync(args['tls-key']) },
      handler,
    )
    : http.createServer(handler);
  // The issuer URL depends on the port, which is known only once listening.
  server.listen(Number(args.port), '127.0.0.1', () => {
    state.issuer = `${tls ? 'https' : 'http'}://127.0.0.1:${server.address().port}`;
    state.provider = buildProvider(state.issuer);
    process.stdout.write(`LISTENING ${state.issuer}\n`);
  });
  const stop = () => server.close(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  if (args['exit-on-stdin-eof']) {
    process.stdin.on('end', () => process.exit(0));
    process.stdin.resume();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
