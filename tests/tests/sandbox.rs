//! Hostile and buggy functions are stopped with their own named error, within a bounded time,
//! and the next good event on the same engine (and the same function) succeeds.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use sluice_runtime::dataplane::pipeline::workers::Workers;
use sluice_runtime::engine::{InvokeError, Isolation, Limits, Outcome, UploadError};
use sluice_tests::{component, engine, function};

fn track(name: &str) -> String {
    json!({"type": "track", "event": name, "userId": "u1", "properties": {"copies": 3}}).to_string()
}

fn assert_next_event_succeeds(f: &sluice_runtime::engine::Function, isolation: Isolation) {
    let run = f.invoke(&track("fine"), "{}", &Limits::default(), isolation);
    assert!(
        matches!(run.result, Ok(Outcome::Forward { .. })),
        "after a failure: {:?}",
        run.result
    );
}

/// Whether an invocation failed the way a case expects.
type Expect = Box<dyn Fn(&InvokeError) -> bool>;

#[test]
fn each_failure_has_its_own_named_error_and_never_poisons_the_next_event() {
    let engine = engine();
    let hostile = function(&engine, "hostile");
    for isolation in [Isolation::default(), Isolation::Fresh] {
        // A deadline far beyond the fuel's reach: on a loaded machine 50 ms can pass before
        // 50M fuel is spent, and this test is about each bound naming itself.
        let limits = Limits {
            deadline: Duration::from_secs(10),
            ..Limits::default()
        };
        let small_output = Limits {
            output_bytes: 64 << 10,
            ..limits.clone()
        };
        let cases: Vec<(&str, &Limits, Expect)> = vec![
            (
                "loop",
                &limits,
                Box::new(
                    |e| matches!(e, InvokeError::OutOfFuel { budget } if *budget == 50_000_000),
                ),
            ),
            (
                "grow",
                &limits,
                Box::new(
                    |e| matches!(e, InvokeError::MemoryLimit { limit_bytes } if *limit_bytes == 16 << 20),
                ),
            ),
            (
                "recurse",
                &limits,
                Box::new(|e| matches!(e, InvokeError::StackOverflow)),
            ),
            (
                "sleep",
                &limits,
                Box::new(
                    |e| matches!(e, InvokeError::Blocked { call } if call.contains("wasi:io/poll")),
                ),
            ),
            (
                "oversize",
                &small_output,
                Box::new(
                    |e| matches!(e, InvokeError::OutputTooLarge { limit_bytes, actual_bytes } if *limit_bytes == 64 << 10 && *actual_bytes > 256 << 10),
                ),
            ),
            (
                "panic",
                &limits,
                Box::new(|e| {
                    matches!(e, InvokeError::Trap { guest_message: Some(m), backtrace: Some(bt), .. }
                        if m.contains("hostile function panicked on purpose") && bt.contains("panic"))
                }),
            ),
        ];
        for (name, limits, expected) in cases {
            let started = Instant::now();
            let run = hostile.invoke(&track(name), "{}", limits, isolation);
            let elapsed = started.elapsed();
            match &run.result {
                Err(err) => assert!(expected(err), "{name}: unexpected error {err:?}"),
                Ok(outcome) => panic!("{name}: expected a failure, got {outcome:?}"),
            }
            assert!(elapsed < Duration::from_secs(2), "{name} took {elapsed:?}");
            assert_next_event_succeeds(&hostile, isolation);
        }
    }
}

#[test]
fn a_loop_with_plenty_of_fuel_hits_the_deadline() {
    let engine = engine();
    let hostile = function(&engine, "hostile");
    let limits = Limits {
        fuel: u64::MAX / 2,
        deadline: Duration::from_millis(30),
        ..Limits::default()
    };
    let started = Instant::now();
    let run = hostile.invoke(&track("loop"), "{}", &limits, Isolation::default());
    assert_eq!(
        run.result,
        Err(InvokeError::DeadlineExceeded {
            deadline: Duration::from_millis(30)
        })
    );
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "stopped promptly: {:?}",
        started.elapsed()
    );
    assert!(run.result.as_ref().is_err_and(InvokeError::is_retryable));
    assert_next_event_succeeds(&hostile, Isolation::default());
}

/// The deadline counts the CPU time of the thread running the guest: a function on the
/// pipeline's low-priority worker, kept off the cores by busy threads at normal priority, is
/// not interrupted for the time it waited. Here a loop with fuel for a few milliseconds of
/// work and a 200 ms deadline waits far longer than 200 ms for its cores, and still ends on
/// its fuel, as it would on an idle machine (a wall-clock deadline interrupted it).
#[test]
fn time_spent_waiting_for_a_core_does_not_count_against_the_deadline() {
    let engine = engine();
    let hostile = Arc::new(function(&engine, "hostile"));
    let limits = Limits {
        fuel: 10_000_000,
        deadline: Duration::from_millis(200),
        ..Limits::default()
    };
    let workers = Workers::start(1, 19).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let hogs: Vec<_> = (0..cores * 2)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::hint::spin_loop();
                }
            })
        })
        .collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let started = Instant::now();
    let run = runtime.block_on(
        workers.run(move || hostile.invoke(&track("loop"), "{}", &limits, Isolation::default())),
    );
    let waited = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    for hog in hogs {
        hog.join().unwrap();
    }
    let run = run.unwrap();
    assert_eq!(
        run.result,
        Err(InvokeError::OutOfFuel { budget: 10_000_000 }),
        "after {waited:?} on the clock"
    );
}

#[test]
fn guest_errors_fan_out_and_bounded_logs() {
    let engine = engine();
    let hostile = function(&engine, "hostile");
    let limits = Limits::default();
    let run = hostile.invoke(&track("retry"), "{}", &limits, Isolation::default());
    assert_eq!(
        run.result,
        Ok(Outcome::Error {
            kind: "retry-error",
            message: "the upstream is down, try again".into()
        })
    );
    let run = hostile.invoke(&track("fanout"), "{}", &limits, Isolation::default());
    match run.result {
        Ok(Outcome::FanOut { events }) => assert_eq!(events.len(), 3),
        other => panic!("expected fan-out, got {other:?}"),
    }
    let run = hostile.invoke(&track("chatty"), "{}", &limits, Isolation::default());
    assert!(
        matches!(run.result, Ok(Outcome::Forward { .. })),
        "logging never fails a function"
    );
    assert_eq!(
        run.logs.len(),
        limits.log_lines + 1,
        "kept lines plus one line saying how many were dropped"
    );
    let last = run.logs.last().unwrap();
    assert!(
        last.message.contains("9900 more log lines were dropped"),
        "{}",
        last.message
    );
}

#[test]
fn a_batch_with_one_bad_event_fails_only_that_event() {
    let engine = engine();
    let hostile = function(&engine, "hostile");
    let events = vec![track("a"), track("panic"), track("b"), track("retry")];
    let batch = hostile.invoke_batch(&events, "{}", &Limits::default(), Isolation::default());
    assert_eq!(batch.results.len(), 4);
    assert!(matches!(batch.results[0], Ok(Outcome::Forward { .. })));
    assert!(matches!(batch.results[1], Err(InvokeError::Trap { .. })));
    assert!(matches!(batch.results[2], Ok(Outcome::Forward { .. })));
    assert!(matches!(
        batch.results[3],
        Ok(Outcome::Error {
            kind: "retry-error",
            ..
        })
    ));
}

#[test]
fn two_functions_run_concurrently_without_interference() {
    let engine = engine();
    let pii = function(&engine, "pii-filter");
    let hostile = function(&engine, "hostile");
    let event = json!({"type": "track", "event": "x", "properties": {"email": "a@b.example.com"}})
        .to_string();
    std::thread::scope(|scope| {
        let bad = scope.spawn(|| {
            // Fuel, not the wall clock, must end each loop, however busy the other thread is.
            let fuel_bound = Limits {
                deadline: Duration::from_secs(10),
                ..Limits::default()
            };
            for _ in 0..20 {
                let run = hostile.invoke(&track("loop"), "{}", &fuel_bound, Isolation::default());
                assert!(matches!(run.result, Err(InvokeError::OutOfFuel { .. })));
            }
        });
        let good = scope.spawn(|| {
            for _ in 0..2_000 {
                let run = pii.invoke(&event, "{}", &Limits::default(), Isolation::default());
                match run.result {
                    Ok(Outcome::Forward { event }) => assert!(event.contains("[EMAIL]")),
                    other => panic!("the good function was disturbed: {other:?}"),
                }
            }
        });
        bad.join().unwrap();
        good.join().unwrap();
    });
    assert!(
        pii.warm_instances() >= 1,
        "the good function's instance was reused"
    );
}

#[test]
fn uploads_that_are_not_insert_function_components_are_refused_by_name() {
    let engine = engine();
    assert!(matches!(
        engine.compile(b"definitely not wasm"),
        Err(UploadError::NotWasm)
    ));
    let core = wat_module();
    assert!(matches!(
        engine.compile(&core),
        Err(UploadError::CoreModule)
    ));

    let sneaky = wat::parse_str(
        r#"(component (import "acme:secrets/vault@1.0.0" (instance)) (import "wasi:http/outgoing-handler@0.2.0" (instance)))"#,
    )
    .unwrap();
    match engine.compile(&sneaky) {
        Err(UploadError::UnknownImports(names)) => {
            assert_eq!(
                names,
                vec![
                    "acme:secrets/vault@1.0.0",
                    "wasi:http/outgoing-handler@0.2.0"
                ]
            );
        }
        Err(other) => panic!("expected unknown imports, got {other}"),
        Ok(_) => panic!("expected unknown imports, got a compiled component"),
    }
    let empty = wat::parse_str("(component)").unwrap();
    let err = engine
        .compile(&empty)
        .err()
        .expect("an empty component is refused");
    assert!(matches!(err, UploadError::WrongWorld(_)), "{err}");
    assert!(
        err.to_string().contains("handle"),
        "names the missing export: {err}"
    );

    let mut truncated = component("pii-filter");
    truncated.truncate(truncated.len() / 2);
    assert!(matches!(
        engine.compile(&truncated),
        Err(UploadError::Invalid(_))
    ));
}

fn wat_module() -> Vec<u8> {
    wat::parse_str(r#"(module (func (export "handle")))"#).unwrap()
}

#[test]
fn instances_are_reused_retired_after_max_uses_and_fresh_when_asked() {
    let engine = engine();
    let hostile = function(&engine, "hostile");
    let seen = |isolation: Isolation| -> Vec<u64> {
        (0..5)
            .map(|_| {
                let run = hostile.invoke(&track("count"), "{}", &Limits::default(), isolation);
                let Ok(Outcome::Forward { event }) = run.result else {
                    panic!("count forwards: {:?}", run.result);
                };
                let event: serde_json::Value = serde_json::from_str(&event).unwrap();
                event["properties"]["seen"].as_u64().unwrap()
            })
            .collect()
    };
    assert_eq!(
        seen(Isolation::Fresh),
        vec![1, 1, 1, 1, 1],
        "no state survives a fresh instance"
    );
    assert_eq!(
        seen(Isolation::Pooled { max_uses: 2 }),
        vec![1, 2, 1, 2, 1],
        "retired after 2 uses"
    );
    // A trap retires the instance too: the counter starts again after it.
    assert_eq!(
        seen(Isolation::Pooled { max_uses: 100 }),
        vec![2, 3, 4, 5, 6]
    );
    let run = hostile.invoke(
        &track("panic"),
        "{}",
        &Limits::default(),
        Isolation::default(),
    );
    assert!(run.result.is_err());
    assert_eq!(
        seen(Isolation::Pooled { max_uses: 100 })[0],
        1,
        "the trapped instance was not reused"
    );
}
