//! Data: the digits data set (embedded), the generated sorting task, and seeded batching.

mod batches;
mod digits;
mod sort_task;

pub use batches::Batches;
pub use digits::{Digits, DigitsSplit};
pub use sort_task::{SortBatch, SortTask};
