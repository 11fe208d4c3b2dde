//! Lambda: the IAM key sweep (warn, deactivate, delete).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    keyrotor::lambda::serve(keyrotor::lambda::Job::IamKeys).await
}
