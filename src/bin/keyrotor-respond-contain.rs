//! Lambda: contains one exposed IAM access key (replace where bound, deactivate, revoke older sessions).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    keyrotor::lambda::serve(keyrotor::lambda::Job::RespondContain).await
}
