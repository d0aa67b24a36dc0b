//! The login state wherever it lives: this host's state files, and with
//! `state_backend = "redis"` the fleet's shared state as well. The module
//! and `twofactor` reach it through here.
//!
//! With the shared backend the host's own file is still locked, read and
//! written at every decision: the state decided on is the shared one with
//! the host's replay defences taken in ([`LoginState::take_replay_defences`]),
//! so a write the shared state lost in a failover can never let a code be
//! replayed on the host that accepted it, and a host switched to the shared
//! backend brings its spent codes and steps along at each account's first
//! login (`twofactor fleet push` brings every account's at once).
//! Failures, grace and resets come from the shared state alone: it is the
//! authority on them, and a host's stale copy must not undo a reset.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use crate::config::{Config, RedisUnavailable, StateBackend};
use crate::error::Error;
use crate::shared_state::{Lease, RedisSettings, SharedStateError, SharedStore};
use crate::state::{LockedState, LoginState, StateStore};

/// The states of one host's users, for one login or one tool run.
pub struct LoginStates {
    local: StateStore,
    owner: u32,
    shared: Option<Rc<Shared>>,
}

struct Shared {
    settings: Result<RedisSettings, Error>,
    fall_back: bool,
    /// One connection per login, reused by each step.
    connection: RefCell<Option<SharedStore>>,
    /// Once unreachable, a login does not wait for the timeout again.
    unreachable: RefCell<Option<SharedStateError>>,
    /// See [`LoginStates::first_report_of_fallback`].
    fallback_reported: Cell<bool>,
}

/// A state read without a lock, and the clock its windows run on.
#[derive(Debug, Clone)]
pub struct StateView {
    /// The state.
    pub state: LoginState,
    /// Unix time of the state's clock: the shared server's, else this host's.
    pub now: u64,
    /// The shared state could not be reached and `redis_unavailable =
    /// "local"` let this host's state stand in: why.
    pub fallback: Option<SharedStateError>,
}

/// An account's state held for a decision: the host's file lock, and with
/// the shared backend the account's lease. Saved once; dropping it without
/// saving gives both back unchanged.
pub struct HeldState {
    /// The state to decide on and change.
    pub state: LoginState,
    /// Unix time of the state's clock: the shared server's, else this host's.
    pub now: u64,
    /// Like [`StateView::fallback`].
    pub fallback: Option<SharedStateError>,
    local: LockedState,
    shared: Option<HeldShared>,
}

struct HeldShared {
    store: Option<SharedStore>,
    lease: Lease,
    done: bool,
    home: Rc<Shared>,
}

impl LoginStates {
    /// The states as `config` places them; `owner` owns the state files
    /// and the Redis password file (root in production). Nothing is read or
    /// connected until used.
    pub fn new(config: &Config, owner: u32) -> Self {
        let shared = (config.state_backend == StateBackend::Redis).then(|| {
            Rc::new(Shared {
                settings: RedisSettings::from_config(config, owner),
                fall_back: config.redis_unavailable == RedisUnavailable::Local,
                connection: RefCell::new(None),
                unreachable: RefCell::new(None),
                fallback_reported: Cell::new(false),
            })
        });
        LoginStates {
            local: StateStore::new(&config.state_dir),
            owner,
            shared,
        }
    }

    /// This host's state files.
    pub fn local(&self) -> &StateStore {
        &self.local
    }

    /// True the first time it is asked in this login or run, to say a
    /// fallback to this host's state once although both the read before
    /// the prompt and the decision meet it.
    pub fn first_report_of_fallback(&self) -> bool {
        self.shared
            .as_ref()
            .is_some_and(|shared| !shared.fallback_reported.replace(true))
    }

    /// Run `step` on the login's connection, connecting first if needed. A
    /// connection that failed is dropped, not reused. One kept from an
    /// earlier step (the read before the prompt, minutes ago perhaps) may
    /// have gone stale meanwhile (a server restarted, a primary demoted by
    /// a failover): a step failing on it is tried once more on a new one.
    fn on_connection<T>(
        shared: &Shared,
        mut step: impl FnMut(&mut SharedStore) -> Result<T, Error>,
    ) -> Result<(T, SharedStore), Error> {
        let kept = shared.connection.borrow_mut().take();
        if let Some(mut store) = kept {
            if let Ok(value) = step(&mut store) {
                return Ok((value, store));
            }
        }
        if let Some(why) = shared.unreachable.borrow().as_ref() {
            return Err(why.clone().into());
        }
        let settings = shared.settings.as_ref().map_err(Clone::clone)?;
        let fresh = settings
            .connect()
            .map_err(Error::from)
            .and_then(|mut store| step(&mut store).map(|value| (value, store)));
        if let Err(Error::SharedState(why)) = &fresh {
            if why.is_unreachable() {
                *shared.unreachable.borrow_mut() = Some(why.clone());
            }
        }
        fresh
    }

    /// `name`'s state without a lock (for display and the checks made
    /// before asking). `host_now` is this host's clock.
    pub fn peek(&self, name: &str, host_now: u64) -> Result<StateView, Error> {
        let local = self.local.peek(name, self.owner);
        let Some(shared) = &self.shared else {
            return Ok(StateView {
                state: local?,
                now: host_now,
                fallback: None,
            });
        };
        match Self::on_connection(shared, |store| store.peek(name)) {
            Ok((peeked, store)) => {
                *shared.connection.borrow_mut() = Some(store);
                let mut state = peeked.state;
                if let Ok(local) = &local {
                    state.take_replay_defences(local);
                }
                Ok(StateView {
                    state,
                    now: peeked.now,
                    fallback: None,
                })
            }
            Err(e) if shared.fall_back && e.is_shared_state_unreachable() => Ok(StateView {
                state: local?,
                now: host_now,
                fallback: Some(unreachable_of(e)),
            }),
            Err(e) => Err(e),
        }
    }

    /// Hold `name`'s state for a decision: `local` is the host's file,
    /// already locked (and its aliases taken in); with the shared backend
    /// the account's lease is taken too. `host_now` is this host's clock.
    pub fn hold(
        &self,
        mut local: LockedState,
        name: &str,
        host_now: u64,
    ) -> Result<HeldState, Error> {
        let Some(shared) = &self.shared else {
            // The decision's state is the file's own, moved (not copied)
            // out of it and back for the save.
            return Ok(HeldState {
                state: std::mem::take(&mut local.state),
                now: host_now,
                fallback: None,
                local,
                shared: None,
            });
        };
        match Self::on_connection(shared, |store| store.lease(name)) {
            Ok((lease, store)) => {
                let mut state = lease.state.clone();
                state.take_replay_defences(&local.state);
                // Which of this host's alias files were taken in is the
                // host's own fact, not the fleet's.
                state.aliases_merged = local.state.aliases_merged;
                Ok(HeldState {
                    state,
                    now: lease.now,
                    fallback: None,
                    local,
                    shared: Some(HeldShared {
                        store: Some(store),
                        lease,
                        done: false,
                        home: Rc::clone(shared),
                    }),
                })
            }
            Err(e) if shared.fall_back && e.is_shared_state_unreachable() => Ok(HeldState {
                state: std::mem::take(&mut local.state),
                now: host_now,
                fallback: Some(unreachable_of(e)),
                local,
                shared: None,
            }),
            Err(e) => Err(e),
        }
    }
}

fn unreachable_of(e: Error) -> SharedStateError {
    match e {
        Error::SharedState(why) => why,
        other => SharedStateError::Unreachable(other.to_string()),
    }
}

impl HeldState {
    /// Write `state` to the shared state (while the lease is still this
    /// login's), giving the lease back, and to the host's file (whatever
    /// became of the shared write: it only adds what was decided). A backup
    /// code newly spent waits for the replicas `redis_wait_replicas` asks
    /// for. An error means the decision must not stand (the login fails);
    /// what was written stays written, so a code is never revived.
    pub fn save(&mut self) -> Result<(), Error> {
        // The shared state first, so that the lease is held no longer than
        // the decision needs (the host's file is flushed to disk); the
        // host's file is still written before the login may succeed, under
        // its lock, held until this is dropped.
        let shared_result = self.save_shared();
        std::mem::swap(&mut self.local.state, &mut self.state);
        let local_result = self.local.save();
        std::mem::swap(&mut self.local.state, &mut self.state);
        shared_result.and(local_result)
    }

    fn save_shared(&mut self) -> Result<(), Error> {
        let Some(shared) = &mut self.shared else {
            return Ok(());
        };
        if shared.done {
            return Err(SharedStateError::LeaseLost.into());
        }
        shared.done = true;
        let Some(store) = shared.store.as_mut() else {
            return Err(SharedStateError::LeaseLost.into());
        };
        let spent = self
            .state
            .spent_backup_codes
            .iter()
            .any(|id| !shared.lease.state.is_spent(id));
        let result = store.store(&shared.lease, &self.state, spent);
        if matches!(&result, Err(e) if e.is_shared_state_unreachable()) {
            // A broken connection is not handed back for reuse.
            shared.store = None;
        }
        result
    }
}

impl Drop for HeldShared {
    fn drop(&mut self) {
        if let Some(mut store) = self.store.take() {
            if !self.done {
                store.release(&self.lease);
            }
            *self.home.connection.borrow_mut() = Some(store);
        }
    }
}
