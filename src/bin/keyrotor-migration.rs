//! Lambda: the migration sweep.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    keyrotor::lambda::serve(keyrotor::lambda::Job::Migration).await
}
