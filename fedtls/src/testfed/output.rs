//! Writing the files of the federation directory.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::TestFedError;

pub(super) struct Writer<'a> {
    pub(super) dir: &'a Path,
}

impl Writer<'_> {
    pub(super) fn write(
        &self,
        relative: &str,
        contents: &[u8],
        private: bool,
    ) -> Result<PathBuf, TestFedError> {
        let path = self.dir.join(relative);
        let io = |source| TestFedError::Io {
            path: path.clone(),
            source,
        };
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(io)?;
        }
        let mut options = fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        if private {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        #[cfg(not(unix))]
        let _ = private;
        let mut file = options.open(&path).map_err(io)?;
        file.write_all(contents).map_err(io)?;
        Ok(path)
    }
}
