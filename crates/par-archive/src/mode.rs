//! Entry types and permission bits, read from the Unix mode in the high 16 bits of a
//! central record's external attributes.
//!
//! The high bits are read whatever "version made by" claims: Python's zipfile stores
//! `st_mode << 16` on every platform, and a link hidden behind a DOS "made by" byte is
//! still a link to any tool that looks at those bits.

const S_IFMT: u32 = 0o170_000;
const S_IFSOCK: u32 = 0o140_000;
const S_IFLNK: u32 = 0o120_000;
const S_IFREG: u32 = 0o100_000;
const S_IFBLK: u32 = 0o060_000;
const S_IFDIR: u32 = 0o040_000;
const S_IFCHR: u32 = 0o020_000;
const S_IFIFO: u32 = 0o010_000;

/// Mode of every directory this crate creates: traversable by the workers that run the
/// agent, writable only by the owner.
pub(crate) const DIR_MODE: u32 = 0o755;

/// Mode of a file whose entry carries no Unix mode.
const DEFAULT_FILE_MODE: u32 = 0o644;

/// The Unix mode stored in external attributes (0 when the writer stored none).
pub(crate) fn unix_mode(external_attr: u32) -> u32 {
    external_attr >> 16
}

/// Refuses every type but regular files and directories, and modes that contradict the
/// name (a trailing `/` is what marks a directory; a mode of type 0 defers to the name).
pub(crate) fn check_type(mode: u32, is_dir: bool) -> Result<(), &'static str> {
    match (mode & S_IFMT, is_dir) {
        (0, _) | (S_IFREG, false) | (S_IFDIR, true) => Ok(()),
        (S_IFREG, true) => Err("regular-file mode on a directory name"),
        (S_IFDIR, false) => Err("directory mode on a name without a trailing `/`"),
        (S_IFLNK, _) => Err("symbolic links are not allowed"),
        (S_IFCHR | S_IFBLK, _) => Err("device files are not allowed"),
        (S_IFIFO, _) => Err("fifos are not allowed"),
        (S_IFSOCK, _) => Err("sockets are not allowed"),
        _ => Err("unknown file type"),
    }
}

/// The permission bits an extracted file gets: the entry's own, so an executable stays
/// executable, minus setuid/setgid/sticky and minus group/other write, so a package can
/// neither escalate nor leave files another local user could modify.
pub(crate) fn file_permissions(mode: u32) -> u32 {
    if mode == 0 {
        DEFAULT_FILE_MODE
    } else {
        mode & 0o777 & !0o022
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regular_files_and_directories_pass() {
        assert_eq!(check_type(0o100_755, false), Ok(()));
        assert_eq!(check_type(0o040_775, true), Ok(()));
        assert_eq!(check_type(0, false), Ok(()));
        assert_eq!(
            check_type(0o644, false),
            Ok(()),
            "permissions without a type"
        );
        assert_eq!(check_type(0, true), Ok(()));
    }

    #[test]
    fn symlinks_are_refused() {
        assert!(check_type(0o120_777, false).is_err());
        assert!(check_type(0o120_777, true).is_err());
    }

    #[test]
    fn special_files_are_refused() {
        for kind in [S_IFCHR, S_IFBLK, S_IFIFO, S_IFSOCK, 0o170_000, 0o030_000] {
            assert!(check_type(kind | 0o644, false).is_err(), "{kind:o}");
        }
    }

    #[test]
    fn a_mode_contradicting_the_name_is_refused() {
        assert!(check_type(0o100_644, true).is_err());
        assert!(check_type(0o040_755, false).is_err());
    }

    #[test]
    fn permissions_keep_exec_and_drop_special_and_shared_write_bits() {
        assert_eq!(file_permissions(0o100_755), 0o755);
        assert_eq!(file_permissions(0o100_777), 0o755);
        assert_eq!(file_permissions(0o100_666), 0o644);
        assert_eq!(file_permissions(0o104_755), 0o755, "setuid");
        assert_eq!(file_permissions(0o102_755), 0o755, "setgid");
        assert_eq!(file_permissions(0o101_777), 0o755, "sticky");
        assert_eq!(file_permissions(0o100_600), 0o600);
        assert_eq!(file_permissions(0), 0o644, "no mode stored");
    }

    #[test]
    fn mode_comes_from_the_high_bits() {
        assert_eq!(unix_mode((0o100_755 << 16) | 0x20), 0o100_755);
        assert_eq!(unix_mode(0x10), 0);
    }
}
