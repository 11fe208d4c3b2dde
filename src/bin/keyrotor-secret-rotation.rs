//! Lambda: the Secrets Manager rotation hook (createSecret, setSecret, testSecret,
//! finishSecret) for secrets tagged `keyrotor:type`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    keyrotor::lambda::serve(keyrotor::lambda::Job::SecretRotation).await
}
