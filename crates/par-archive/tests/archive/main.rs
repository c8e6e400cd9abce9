//! The public API against archives built in the tests: valid packages shaped like kit
//! builds, and hostile ones, one defect each (see `/work/shared/TESTING.md`, "Hostile
//! archives").

mod extract;
mod hostile;
mod read;
mod support;
