//! Model groups and their deployments, and the choice of a deployment for a call.

use std::sync::atomic::{AtomicUsize, Ordering};

use switchyard_providers::Upstream;

/// One upstream endpoint serving a model group.
#[derive(Debug)]
pub struct Deployment {
    /// `provider/model`, for logs and response headers.
    pub label: String,
    /// Where and how to call.
    pub upstream: Upstream,
}

/// A name clients use and the deployments behind it.
#[derive(Debug)]
pub struct ModelGroup {
    /// The group's name.
    pub name: String,
    /// Its deployments (never empty: config validation guarantees it).
    pub deployments: Vec<Deployment>,
    next: AtomicUsize,
}

impl ModelGroup {
    /// A group of `deployments` called `name`.
    pub fn new(name: String, deployments: Vec<Deployment>) -> ModelGroup {
        ModelGroup {
            name,
            deployments,
            next: AtomicUsize::new(0),
        }
    }

    /// The deployment for the next call: round robin over the group.
    pub fn pick(&self) -> Option<&Deployment> {
        if self.deployments.is_empty() {
            return None;
        }
        let turn = self.next.fetch_add(1, Ordering::Relaxed);
        self.deployments.get(turn % self.deployments.len())
    }
}
