//! One log budget per package name, shared by all of that package's processes (workers
//! and HTTP app, every version while a swap overlaps them); see `par_worker::log_budget`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use par_worker::log_budget::{DropCounter, LogBudget, LogRate};

pub(crate) struct LogBudgets {
    rate: LogRate,
    metrics: par_telemetry::Metrics,
    /// Weak: a budget lives as long as a process of its package does.
    budgets: Mutex<HashMap<String, Weak<LogBudget>>>,
}

impl LogBudgets {
    pub(crate) fn new(rate: LogRate, metrics: par_telemetry::Metrics) -> Self {
        LogBudgets {
            rate,
            metrics,
            budgets: Mutex::new(HashMap::new()),
        }
    }

    /// The package's budget, made on first use.
    pub(crate) fn for_package(&self, package: &str) -> Arc<LogBudget> {
        let mut budgets = self.budgets.lock().expect("log budgets poisoned");
        budgets.retain(|_, budget| budget.strong_count() > 0);
        if let Some(budget) = budgets.get(package).and_then(Weak::upgrade) {
            return budget;
        }
        let metrics = self.metrics.clone();
        let name = package.to_string();
        let counter: DropCounter = Arc::new(move |n| metrics.log_lines_dropped(&name, n));
        let budget = LogBudget::new(package, self.rate, Some(counter));
        budgets.insert(package.to_string(), Arc::downgrade(&budget));
        budget
    }
}
