//! par-pyenv
