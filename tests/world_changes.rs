//! The world changing inside one run: the IAM key sweep discovers, plans, then acts on each
//! key; at scale (pacing over thousands of users) minutes pass in between. A person who
//! exempts a user in that window is obeyed: the step re-reads the user right before it
//! acts. The run is stopped at that re-read (an SDK interceptor), the user is tagged, and
//! the run goes on.

mod support;

use std::sync::mpsc;
use std::time::Duration as StdDuration;

use aws_sdk_iam::types::{StatusType, Tag};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use chrono::Duration;
use keyrotor::aws::Aws;
use keyrotor::lambda::{Context, Job};
use serde_json::{Value, json};
use support::{PolicyText, Timeline, World, ok, policy::CONTACT, run, seed};

/// Day 0 of every test here; `TIME.day(n)` is day `n` for keyrotor and the emulator.
const TIME: Timeline = Timeline::starting(2026, 2, 1);

/// Enforce, with a contact for the warnings.
fn policy() -> PolicyText {
    PolicyText::mode("enforce").with(CONTACT)
}

/// Stops the run at its first call of `operation`: tells `reached`, waits for `go`.
#[derive(Debug)]
struct Gate {
    operation: &'static str,
    reached: mpsc::SyncSender<()>,
    go: std::sync::Mutex<mpsc::Receiver<()>>,
    passed: std::sync::atomic::AtomicBool,
}

impl Intercept for Gate {
    fn name(&self) -> &'static str {
        "world_changes::Gate"
    }

    fn read_before_serialization(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if cfg
            .load::<Metadata>()
            .is_some_and(|m| m.name() == self.operation)
            && !self.passed.swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            let _ = self.reached.send(());
            let _ = self.go.lock().unwrap().recv();
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_exempted_while_the_sweep_runs_keeps_its_key() {
    // GIVEN bob's key, never used, warned on day 50 (unused 45 days).
    let world = World::new();
    TIME.set_clock(&world, 0);
    let iam = aws_sdk_iam::Client::new(&world.sdk().await);
    let key = seed::user_with_key(&iam, "bob", &[]).await.id;
    let file = policy().file();
    let cli = |n: i64, args: &[&str]| ok(&run(TIME.keyrotor(&world, &file, n).args(args)));
    cli(0, &["init"]);
    let warned: Value = serde_json::from_str(&cli(
        50,
        &["sweep", "--kind", "iam-keys", "--output", "json"],
    ))
    .unwrap();
    assert!(warned.to_string().contains("warn"), "{warned}");

    // WHEN the day-60 sweep (deactivation due) is stopped right before it acts on bob, and a
    // person exempts bob meanwhile
    TIME.set_clock(&world, 60);
    let (reached_tx, reached) = mpsc::sync_channel(1);
    let (go, go_rx) = mpsc::channel();
    let gate = Gate {
        operation: "GetUser",
        reached: reached_tx,
        go: std::sync::Mutex::new(go_rx),
        passed: Default::default(),
    };
    let sweeper = {
        let world = world.clone();
        std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(async move {
                    let ctx = Context {
                        aws: Aws::from_config(world.sdk().await).with_interceptor(gate),
                        policy: policy().parse(),
                        region: support::REGION.to_owned(),
                        fixed_now: Some(TIME.at(60)),
                        items_bucket: None,
                        inline_items: 40,
                        caller: None,
                    };
                    keyrotor::lambda::run_job(&ctx, Job::IamKeys, json!({})).await
                })
        })
    };
    reached
        .recv_timeout(StdDuration::from_secs(60))
        .expect("the sweep reads bob right before acting");
    iam.tag_user()
        .user_name("bob")
        .tags(
            Tag::builder()
                .key("keyrotor:exempt")
                .value(
                    (TIME.at(60) + Duration::days(30))
                        .format("%Y-%m-%d")
                        .to_string(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    go.send(()).unwrap();
    let done = sweeper.join().unwrap();

    // THEN bob's key is still active, and the step says why it stopped.
    let keys = iam
        .list_access_keys()
        .user_name("bob")
        .send()
        .await
        .unwrap();
    assert_eq!(
        keys.access_key_metadata()[0].status(),
        Some(&StatusType::Active),
        "{done:?}"
    );
    let text = format!("{done:?}");
    assert!(text.contains(&key) && text.contains("scope"), "{text}");
}
