//! Names in an account are a trust boundary for the person reading keyrotor's output: an
//! API key named with terminal escape sequences must reach the terminal as plain text.
//! Against the emulator, through the real CLI.

mod support;

use support::{World, ok, run};

/// Sets the window title, rings the bell, clears the screen; then a C1 CSI (U+009B) and DEL.
const EVIL: &str = "evil\u{1b}]0;pwned\u{7}\u{1b}[2J\u{9b}31m\u{7f}";

#[tokio::test]
async fn an_api_key_named_with_escape_sequences_is_shown_without_them() {
    // GIVEN an API key (not managed by keyrotor) whose name and owner tag carry escapes
    let world = World::new();
    let gateway = aws_sdk_apigateway::Client::new(&world.sdk().await);
    gateway
        .create_api_key()
        .name(EVIL)
        .enabled(true)
        .tags("owner", EVIL)
        .send()
        .await
        .unwrap();
    ok(&run(world.keyrotor().arg("init")));

    // WHEN the plan is shown as a table
    let table = ok(&run(world.keyrotor().args(["plan", "--kind", "api-keys"])));

    // THEN the key is listed, with its name as inert text
    assert!(table.contains("evil]0;pwned[2J31m"), "{table:?}");
    for c in ['\u{1b}', '\u{7}', '\u{9b}', '\u{7f}'] {
        assert!(
            !table.contains(c),
            "U+{:04X} reached the terminal: {table:?}",
            c as u32
        );
    }

    // AND JSON keeps the real name, escaped by the encoder
    let json = ok(&run(world
        .keyrotor()
        .args(["plan", "--kind", "api-keys", "--output", "json"])));
    assert!(!json.contains('\u{1b}'), "{json:?}");
    assert!(json.contains("\\u001b]0;pwned"), "{json}");
}
