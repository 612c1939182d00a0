//! The payment ledger: every accepted x402 payment, keyed by its replay key, recorded durably
//! **before** the paid work runs, so a replayed payment is refused, also after a restart and
//! on every replica of a cluster (the replay key is the primary key of one table in the one
//! database they share: a constraint, not a map in one process).
//!
//! States: `reserved` (verified and recorded, work about to run) → `settling` (the work gave a
//! result; the settlement is about to be asked for) → `settled` (with the transaction, empty in
//! verify-only mode) or `settlement_failed`. A reservation whose work gave no result is
//! released (deleted): nothing was delivered, so the payer may present it again.
//!
//! Each reservation names its **owner**, the run of the host process that made it
//! ([`crate::storage::members`]), and keeps the payment sealed ([`NewPayment::sealed`]), so
//! that when its owner dies mid-payment another run takes it over ([`PaymentLedger::adopt`]):
//! a `reserved` one is released (its work never gave a result), a `settling` one is settled
//! from the sealed payment (EIP-3009 nonces make a second submission of the same authorization
//! harmless: it moves money at most once).
//!
//! A payment may carry an x402 **payment identifier** (the `payment-identifier` extension, an
//! idempotency key the client chooses): unique in the ledger, recorded with the reservation
//! (so a released reservation frees it), with the SHA-256 of the payment it came with, and,
//! once the paid request was answered, that answer (sealed by the pipeline): a retry of the
//! same payment under the same identifier gets it again, from any replica.

use super::StorageError;

/// A payment about to be recorded.
#[derive(Debug, Clone)]
pub struct NewPayment<'a> {
    /// The component's replay key.
    pub replay_key: &'a str,
    /// The payer's address.
    pub payer: &'a str,
    /// Amount, atomic units.
    pub amount: &'a str,
    /// Network, CAIP-2.
    pub network: &'a str,
    /// The paid route.
    pub route: &'a str,
    /// The run that reserves it ([`crate::storage::members::RunId`]).
    pub owner: &'a str,
    /// What settling it takes (the payment header, the resource and the price), sealed with
    /// the at-rest key: another run settles it from this if the owner dies. Empty for a
    /// verify-only payment, which is never settled from the ledger.
    pub sealed: &'a [u8],
    /// Unix seconds.
    pub at: u64,
    /// Its payment identifier, if it came with one.
    pub identifier: Option<Identifier<'a>>,
}

/// A payment identifier and the fingerprint of the payment that came with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identifier<'a> {
    /// The client's identifier (16–128 of `A–Z a–z 0–9 _ -`).
    pub id: &'a str,
    /// SHA-256 of the payment (its canonical JSON).
    pub fingerprint: &'a [u8],
}

/// What the ledger holds under a payment identifier ([`PaymentLedger::identified`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identified {
    /// The payment's replay key.
    pub replay_key: String,
    /// [`Identifier::fingerprint`].
    pub fingerprint: Vec<u8>,
    /// The answer kept for it.
    pub answer: KeptAnswer,
}

/// The answer kept for an identified payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeptAnswer {
    /// None yet: the paid request is still running (or its host died before answering).
    Pending,
    /// The answer, sealed by the pipeline.
    Kept(Vec<u8>),
    /// Not kept (too large, or forgotten after its time: [`PaymentLedger::forget_answers`]).
    Gone,
}

impl KeptAnswer {
    /// The answer column's value (`NULL`, the sealed answer, or empty) as a [`KeptAnswer`].
    pub fn from_column(column: Option<Vec<u8>>) -> Self {
        match column {
            None => Self::Pending,
            Some(sealed) if sealed.is_empty() => Self::Gone,
            Some(sealed) => Self::Kept(sealed),
        }
    }
}

/// A [`NewPayment`] that owns its fields, for a write that runs after the borrow ends (in a
/// task of its own, or on a database pool's runtime). Its fields are [`NewPayment`]'s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedPayment {
    /// [`NewPayment::replay_key`].
    pub replay_key: String,
    /// [`NewPayment::payer`].
    pub payer: String,
    /// [`NewPayment::amount`].
    pub amount: String,
    /// [`NewPayment::network`].
    pub network: String,
    /// [`NewPayment::route`].
    pub route: String,
    /// [`NewPayment::owner`].
    pub owner: String,
    /// [`NewPayment::sealed`].
    pub sealed: Vec<u8>,
    /// [`NewPayment::at`].
    pub at: u64,
    /// [`NewPayment::identifier`]: the identifier and the fingerprint.
    pub identifier: Option<(String, Vec<u8>)>,
}

impl NewPayment<'_> {
    /// A copy that owns its fields.
    #[must_use]
    pub fn to_owned_payment(&self) -> OwnedPayment {
        OwnedPayment {
            replay_key: self.replay_key.to_owned(),
            payer: self.payer.to_owned(),
            amount: self.amount.to_owned(),
            network: self.network.to_owned(),
            route: self.route.to_owned(),
            owner: self.owner.to_owned(),
            sealed: self.sealed.to_vec(),
            at: self.at,
            identifier: self
                .identifier
                .map(|i| (i.id.to_owned(), i.fingerprint.to_vec())),
        }
    }
}

/// The columns of a new ledger row that depend on how it is inserted (both backends insert
/// the same row: [`OwnedPayment::inserted`]).
#[derive(Debug, Clone, Copy)]
pub struct Inserted<'a> {
    /// `reserved`, or `settled` for a payment recorded after its run.
    pub state: &'static str,
    /// The settlement's transaction: empty for a settled verify-only payment, else none.
    pub transaction: Option<&'static str>,
    /// What settling it takes; none once settled (nothing is left to settle from the ledger).
    pub sealed: Option<&'a [u8]>,
    /// Its payment identifier, if any.
    pub id: Option<&'a str>,
    /// The fingerprint of the payment that came with the identifier.
    pub fingerprint: Option<&'a [u8]>,
}

impl OwnedPayment {
    /// The state-dependent columns of this payment's row, reserved or already `settled`.
    #[must_use]
    pub fn inserted(&self, settled: bool) -> Inserted<'_> {
        let (id, fingerprint) = match &self.identifier {
            Some((id, fingerprint)) => (Some(id.as_str()), Some(fingerprint.as_slice())),
            None => (None, None),
        };
        let (state, transaction, sealed) = if settled {
            ("settled", Some(""), None)
        } else {
            ("reserved", None, Some(self.sealed.as_slice()))
        };
        Inserted {
            state,
            transaction,
            sealed,
            id,
            fingerprint,
        }
    }

    /// The payment, borrowed.
    #[must_use]
    pub fn as_new(&self) -> NewPayment<'_> {
        NewPayment {
            replay_key: &self.replay_key,
            payer: &self.payer,
            amount: &self.amount,
            network: &self.network,
            route: &self.route,
            owner: &self.owner,
            sealed: &self.sealed,
            at: self.at,
            identifier: self
                .identifier
                .as_ref()
                .map(|(id, fingerprint)| Identifier { id, fingerprint }),
        }
    }
}

/// A reservation taken over from a run that died ([`PaymentLedger::adopt`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Adopted {
    /// Its replay key.
    pub replay_key: String,
    /// `reserved` or `settling`.
    pub state: String,
    /// The run that died.
    pub previous_owner: String,
    /// [`NewPayment::sealed`].
    pub sealed: Vec<u8>,
}

/// The interface of a payment ledger: what a database backend implements. Every call is
/// durable when its future completes, and its future never blocks the thread polling it (an
/// async worker goes on with other requests while the write waits for its fsync), so it may be
/// awaited from any executor.
#[async_trait::async_trait]
pub trait PaymentLedger: Send + Sync {
    /// Records a payment as `reserved`. Returns false, recording nothing, if its replay key is
    /// already in the ledger (a replay, from any replica), or its payment identifier is
    /// ([`Self::identified`] tells which).
    ///
    /// # Errors
    /// [`StorageError`].
    async fn reserve(&self, p: &NewPayment<'_>) -> Result<bool, StorageError>;

    /// Records a payment as `settled` (empty transaction) in one write, with no reservation
    /// before it: for a verify-only payment of side-effect-free work, recorded after the run
    /// and before its answer. Returns false, recording nothing, if its replay key is already
    /// in the ledger (a replay, from any replica: the run's result must then be withheld).
    /// `p` carries no identifier and nothing sealed.
    ///
    /// # Errors
    /// [`StorageError`].
    async fn record_settled(&self, p: &NewPayment<'_>) -> Result<bool, StorageError>;

    /// Whether the replay key is in the ledger, in any state: a check before side-effect-free
    /// work, so that a replay of a recorded payment is refused before it runs. It does not
    /// wait for writes in flight ([`Self::record_settled`] decides).
    ///
    /// # Errors
    /// [`StorageError`].
    async fn recorded(&self, replay_key: &str) -> Result<bool, StorageError>;

    /// Forgets a payment still `reserved`: the work it paid for failed before producing a
    /// result, so its authorization was never spent and may be presented again. Returns
    /// whether a reservation was removed (a settling, settled or failed payment never is).
    ///
    /// # Errors
    /// [`StorageError`].
    async fn release(&self, replay_key: &str) -> Result<bool, StorageError>;

    /// Marks a payment reserved by `owner` as `settling`: its work gave a result and its
    /// settlement is about to be asked for; from here on it is never released. Returns false
    /// when the payment is no longer `owner`'s reservation (another run took it over, thinking
    /// this one dead): then it must not be settled here.
    ///
    /// # Errors
    /// [`StorageError`].
    async fn settling(&self, replay_key: &str, owner: &str, at: u64) -> Result<bool, StorageError>;

    /// Records a payment still reserved by `owner` as `settled` with an empty transaction, in
    /// one step: for verify-only mode, where settling moves nothing outside the host, so there
    /// is no settlement to survive a crash in the middle of (no `settling` step). Returns false
    /// when the payment is no longer `owner`'s reservation (as [`Self::settling`]).
    ///
    /// # Errors
    /// [`StorageError`].
    async fn settled_at_once(
        &self,
        replay_key: &str,
        owner: &str,
        at: u64,
    ) -> Result<bool, StorageError>;

    /// Records what a metered (x402 `upto`) payment was charged: its `amount`, the signed
    /// maximum until then. Only while the payment is still `owner`'s reservation (before any
    /// settlement step). Returns whether it changed.
    ///
    /// # Errors
    /// [`StorageError`].
    async fn charged(
        &self,
        replay_key: &str,
        owner: &str,
        amount: &str,
    ) -> Result<bool, StorageError>;

    /// The amount recorded for a payment (its price, or a metered payment's charge), if
    /// recorded.
    ///
    /// # Errors
    /// [`StorageError`].
    async fn amount(&self, replay_key: &str) -> Result<Option<String>, StorageError>;

    /// Records the settlement of a payment still `reserved` or `settling`, or marked
    /// `settlement_failed` (by another run that took it over for dead, whose own attempt was
    /// refused because this one went through).
    ///
    /// # Errors
    /// [`StorageError`].
    async fn settled(
        &self,
        replay_key: &str,
        transaction: &str,
        at: u64,
    ) -> Result<(), StorageError>;

    /// Records a failed settlement of a payment still `reserved` or `settling`.
    ///
    /// # Errors
    /// [`StorageError`].
    async fn settlement_failed(
        &self,
        replay_key: &str,
        reason: &str,
        at: u64,
    ) -> Result<(), StorageError>;

    /// The state of a payment (`reserved`, `settling`, `settled`, `settlement_failed`), if
    /// recorded.
    ///
    /// # Errors
    /// [`StorageError`].
    async fn state(&self, replay_key: &str) -> Result<Option<String>, StorageError>;

    /// Takes over, for the run `owner`, at most `limit` unfinished (`reserved` or `settling`)
    /// payments whose owners are no longer alive (no heartbeat at or after `alive_since_ms` in
    /// [`crate::storage::members`]). Each is adopted by one run only, also when several look at
    /// once.
    ///
    /// # Errors
    /// [`StorageError`].
    async fn adopt(
        &self,
        owner: &str,
        alive_since_ms: u64,
        limit: u32,
    ) -> Result<Vec<Adopted>, StorageError>;

    /// The payment recorded under payment identifier `id`, if any.
    ///
    /// # Errors
    /// [`StorageError`].
    async fn identified(&self, id: &str) -> Result<Option<Identified>, StorageError>;

    /// Keeps the answer to the identified payment `replay_key` (`sealed`; empty: the answer is
    /// not kept, [`KeptAnswer::Gone`]), at `at` (Unix seconds). Returns false when the payment
    /// is not in the ledger or already has an answer.
    ///
    /// # Errors
    /// [`StorageError`].
    async fn keep_answer(
        &self,
        replay_key: &str,
        sealed: &[u8],
        at: u64,
    ) -> Result<bool, StorageError>;

    /// Forgets the answers kept before `before` (Unix seconds), and gives up on the answers of
    /// identified payments no longer `reserved` whose last change was before
    /// `unanswered_before` and that have none: all become [`KeptAnswer::Gone`]. Returns how
    /// many.
    ///
    /// # Errors
    /// [`StorageError`].
    async fn forget_answers(
        &self,
        before: u64,
        unanswered_before: u64,
    ) -> Result<u64, StorageError>;
}
