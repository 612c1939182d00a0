//! Timers and the event loop: `setTimeout`, `setInterval`, `clearTimeout`, `clearInterval`
//! (HTML's timer initialisation steps, as WinterTC's Minimum Common API requires them), and
//! [`run_until`], which drives a promise to its end: microtasks first, then the earliest due
//! timer, sleeping on `wasi:clocks` until it is due.
//!
//! The sleep is the host's, so a handler waiting on a timer burns no CPU (and no fuel), and the
//! time counts against the invocation's time limit like any other wait: the host ends the
//! invocation at its deadline. Timers still pending when the promise settles are dropped (the
//! invocation is over: a `setInterval` never cleared does not keep it alive), as they are when
//! the set-up's top-level evaluation ends.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};

use boa_engine::builtins::promise::PromiseState;
use boa_engine::object::builtins::{JsFunction, JsPromise};
use boa_engine::{Context, JsArgs, JsError, JsObject, JsResult, JsValue, NativeFunction};

/// HTML clamps nested timers (level > 5) to at least 4 ms; so do we.
const NESTED_MINIMUM_MS: u64 = 4;
const NESTING_CLAMP_LEVEL: u32 = 5;

/// A scheduled callback.
struct Timer {
    id: u32,
    callback: JsFunction,
    args: Vec<JsValue>,
    /// Set for `setInterval`: the period, ms.
    repeat: Option<u64>,
    /// The nesting level the callback runs at.
    nesting: u32,
}

/// Due time (ns on the monotonic clock) and a sequence number (timers due at the same instant
/// run in the order they were set).
type Key = (u64, u64);

#[derive(Default)]
struct Timers {
    queue: BTreeMap<Key, Timer>,
    keys: HashMap<u32, Key>,
    next_id: u32,
    next_seq: u64,
    /// The nesting level of the callback running now (0 outside timer callbacks).
    nesting: u32,
    /// The interval whose callback is running, and whether that callback cleared it.
    running: Option<(u32, bool)>,
}

thread_local! {
    static TIMERS: RefCell<Timers> = RefCell::new(Timers::default());
    /// HTML's "report an exception" (src/web/events.js): an `error` event on the global object,
    /// then standard error.
    static REPORT: RefCell<Option<JsObject>> = const { RefCell::new(None) };
}

/// Sets the function that reports an exception a timer's callback threw.
pub fn set_reporter(report: JsObject) {
    REPORT.with(|r| *r.borrow_mut() = Some(report));
}

/// Reports `e` as HTML reports an exception nothing caught.
fn report(e: JsError, context: &mut Context) {
    let reporter = REPORT.with(|r| r.borrow().clone());
    let value = e.clone().into_opaque(context);
    let reported = match (reporter, value) {
        (Some(f), Ok(value)) => f.call(&JsValue::undefined(), &[value], context).is_ok(),
        _ => false,
    };
    if !reported {
        crate::report_uncaught(&e, context);
    }
}

fn now_ns() -> u64 {
    wasip2::clocks::monotonic_clock::now()
}

impl Timers {
    fn schedule(&mut self, mut timer: Timer, delay_ms: u64) {
        let due = now_ns().saturating_add(delay_ms.saturating_mul(1_000_000));
        let key = (due, self.next_seq);
        self.next_seq += 1;
        timer.nesting = self.nesting + 1;
        self.keys.insert(timer.id, key);
        self.queue.insert(key, timer);
    }
}

/// The delay as HTML's timer steps convert it: a WebIDL `long`, negative as 0, clamped to 4 ms
/// when nested deeper than 5 levels.
fn delay(value: &JsValue, nesting: u32, context: &mut Context) -> JsResult<u64> {
    let ms = u64::try_from(value.to_i32(context)?).unwrap_or(0);
    Ok(if nesting > NESTING_CLAMP_LEVEL {
        ms.max(NESTED_MINIMUM_MS)
    } else {
        ms
    })
}

fn set_timer(args: &[JsValue], repeat: bool, context: &mut Context) -> JsResult<JsValue> {
    let handler = args.get_or_undefined(0);
    let (callback, rest) = match handler.as_object().and_then(JsFunction::from_object) {
        Some(f) => (f, args.get(2..).unwrap_or_default().to_vec()),
        // Anything else is code, as HTML has it: its text (converted now) is evaluated as a
        // script when the timer fires (the engine's own `eval`, indirectly: global scope).
        None => {
            let code = handler.to_string(context)?;
            (context.intrinsics().objects().eval(), vec![code.into()])
        }
    };
    let nesting = TIMERS.with(|t| t.borrow().nesting);
    let ms = delay(args.get_or_undefined(1), nesting + 1, context)?;
    let id = TIMERS.with(|t| {
        let mut timers = t.borrow_mut();
        timers.next_id = timers.next_id.wrapping_add(1).max(1);
        let id = timers.next_id;
        let timer = Timer {
            id,
            callback,
            args: rest,
            repeat: repeat.then_some(ms),
            nesting: 0,
        };
        timers.schedule(timer, ms);
        id
    });
    Ok(JsValue::from(id))
}

fn set_timeout(_: &JsValue, args: &[JsValue], context: &mut Context) -> JsResult<JsValue> {
    set_timer(args, false, context)
}

fn set_interval(_: &JsValue, args: &[JsValue], context: &mut Context) -> JsResult<JsValue> {
    set_timer(args, true, context)
}

/// `clearTimeout(id)` and `clearInterval(id)` (either clears either, as in HTML).
fn clear(_: &JsValue, args: &[JsValue], context: &mut Context) -> JsResult<JsValue> {
    let id = args.get_or_undefined(0).to_u32(context)?;
    TIMERS.with(|t| {
        let mut timers = t.borrow_mut();
        if let Some(key) = timers.keys.remove(&id) {
            timers.queue.remove(&key);
        }
        if let Some((running, cleared)) = timers.running.as_mut()
            && *running == id
        {
            *cleared = true;
        }
    });
    Ok(JsValue::undefined())
}

/// Registers the timer functions as globals.
///
/// # Errors
/// If a global of that name exists already.
pub fn register(context: &mut Context) -> JsResult<()> {
    type Native = fn(&JsValue, &[JsValue], &mut Context) -> JsResult<JsValue>;
    let natives: [(&str, usize, Native); 4] = [
        ("setTimeout", 1, set_timeout),
        ("setInterval", 1, set_interval),
        ("clearTimeout", 0, clear),
        ("clearInterval", 0, clear),
    ];
    for (name, length, f) in natives {
        context.register_global_builtin_callable(
            name.into(),
            length,
            NativeFunction::from_fn_ptr(f),
        )?;
    }
    Ok(())
}

/// Drops every pending timer (the invocation or the set-up is over).
pub fn clear_all() {
    TIMERS.with(|t| {
        let mut timers = t.borrow_mut();
        timers.queue.clear();
        timers.keys.clear();
        timers.nesting = 0;
        timers.running = None;
    });
}

/// What to do after the microtasks ran.
enum Next {
    Run(Timer),
    Idle,
}

/// Takes the earliest timer, once it is due (sleeping until then).
fn next_timer() -> Next {
    let Some(due) = TIMERS.with(|t| t.borrow().queue.first_key_value().map(|(k, _)| k.0)) else {
        return Next::Idle;
    };
    let now = now_ns();
    if due > now {
        wasip2::clocks::monotonic_clock::subscribe_duration(due - now).block();
    }
    TIMERS.with(|t| {
        let mut timers = t.borrow_mut();
        match timers.queue.pop_first() {
            Some((_, timer)) => {
                timers.keys.remove(&timer.id);
                Next::Run(timer)
            }
            None => Next::Idle,
        }
    })
}

/// Runs the event loop until `promise` settles, or until nothing is left that could settle it
/// (then the promise is still pending). An exception in a timer's callback is reported as a
/// browser reports it (an `error` event on the global object, then standard error), and the
/// loop goes on.
///
/// # Errors
/// An error the job queue itself returns.
pub fn run_until(promise: &JsPromise, context: &mut Context) -> Result<PromiseState, JsError> {
    loop {
        context.run_jobs()?;
        let state = promise.state();
        if !matches!(state, PromiseState::Pending) {
            return Ok(state);
        }
        let timer = match next_timer() {
            Next::Run(timer) => timer,
            Next::Idle => return Ok(state),
        };
        TIMERS.with(|t| {
            let mut timers = t.borrow_mut();
            timers.nesting = timer.nesting;
            timers.running = Some((timer.id, false));
        });
        let outcome = timer
            .callback
            .call(&JsValue::undefined(), &timer.args, context);
        let cleared = TIMERS.with(|t| {
            let mut timers = t.borrow_mut();
            timers.nesting = 0;
            timers.running.take().is_some_and(|(_, cleared)| cleared)
        });
        if let Err(e) = outcome {
            report(e, context);
        }
        if let Some(period) = timer.repeat.filter(|_| !cleared) {
            TIMERS.with(|t| {
                let mut timers = t.borrow_mut();
                let nesting = timer.nesting;
                let period = if nesting > NESTING_CLAMP_LEVEL {
                    period.max(NESTED_MINIMUM_MS)
                } else {
                    period
                };
                timers.nesting = nesting;
                timers.schedule(timer, period);
                timers.nesting = 0;
            });
        }
    }
}
