//! Lambda: the Secrets Manager rotation hook (createSecret, setSecret, testSecret,
//! finishSecret) for secrets tagged `keyrotor:type`.

use keyrotor::lambda::{Context, diagnostic, init_tracing, secret_rotation};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_tracing();
    let ctx = Context::load().await.map_err(|e| {
        let d = diagnostic(&e);
        format!("{}: {}", d.error_type, d.error_message)
    })?;
    let ctx = &ctx;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        secret_rotation(ctx, event).await
    }))
    .await
}
