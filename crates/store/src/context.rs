//! Who caused a change: the request's actor, carried to the store so that the events the
//! change writes (in its own transaction) name it.
//!
//! The HTTP layer runs each request inside [`scope`]; a store method reads [`current`] in the
//! caller's task and writes it into the `request_context` row of its transaction, where the
//! event triggers read it. Work with no request behind it (the scan worker, start-up
//! reconciliation) has no actor, and its events say so (`actor` is null).

use std::future::Future;

use serde::Serialize;

/// The party behind a request. Accounts do not exist yet, so it is anonymous: the address it
/// came from, its user agent and the request id the response carried.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Actor {
    pub addr: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
}

impl Actor {
    /// The JSON object stored with each event.
    pub fn to_json(&self) -> String {
        serde_json::json!({
            "kind": "anonymous",
            "addr": self.addr,
            "user_agent": self.user_agent,
            "request_id": self.request_id,
        })
        .to_string()
    }
}

tokio::task_local! {
    static ACTOR: Actor;
}

/// Runs `work` with `actor` as the actor of every store change it makes in this task.
pub async fn scope<F: Future>(actor: Actor, work: F) -> F::Output {
    ACTOR.scope(actor, work).await
}

/// The actor of the current task, if it runs inside [`scope`].
pub fn current() -> Option<Actor> {
    ACTOR.try_with(Actor::clone).ok()
}

/// `work` with the current task's actor, for a task spawned on its behalf (a spawned task
/// does not inherit task-locals).
pub fn inherit<F: Future>(work: F) -> impl Future<Output = F::Output> {
    let actor = current();
    async move {
        match actor {
            Some(actor) => ACTOR.scope(actor, work).await,
            None => work.await,
        }
    }
}
