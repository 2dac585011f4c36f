//! Schema migrations of the MySQL store, one node at a time.
//!
//! sqlx serialises migrations with `GET_LOCK(name, -1)`, which MariaDB (10.11 here) answers with NULL,
//! taking no lock: nodes of a cluster starting together on an empty database then run the same
//! migration twice, and all but one fail (`Duplicate entry '1' for key 'PRIMARY'`). A lock of our own
//! with a finite wait, held on one connection around the run, serialises them on MySQL and MariaDB
//! alike; a node that gets it after another finished finds nothing left to apply.

use sqlx::mysql::MySqlPool;

use super::map_err;
use banter_actors::ports::{StoreError, StoreResult};

/// Seconds a node waits for another node's migrations before it gives up.
const LOCK_WAIT_SECS: u32 = 120;

/// Applies the migrations the database lacks, holding the database's migration lock.
pub(super) async fn run(pool: &MySqlPool) -> StoreResult<()> {
    let mut conn = pool.acquire().await.map_err(map_err)?;
    let got: Option<i64> =
        sqlx::query_scalar("SELECT GET_LOCK(CONCAT('banter_migrate.', DATABASE()), ?)")
            .bind(LOCK_WAIT_SECS)
            .fetch_one(&mut *conn)
            .await
            .map_err(map_err)?;
    if got != Some(1) {
        return Err(StoreError::Unavailable(format!(
            "the schema migration lock was not obtained within {LOCK_WAIT_SECS} s \
             (another node is migrating this database)"
        )));
    }
    let result = sqlx::migrate!("migrations/mysql").run(pool).await;
    // Closing the connection would release it too; released explicitly, the connection goes back to
    // the pool clean.
    let _ = sqlx::query("SELECT RELEASE_LOCK(CONCAT('banter_migrate.', DATABASE()))")
        .execute(&mut *conn)
        .await;
    result.map_err(|e| map_err(e.into()))
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use sqlx::mysql::MySqlConnectOptions;
    use sqlx::{AssertSqlSafe, Connection};

    use super::super::MySqlStore;

    /// Nodes starting together on an empty database all come up, with the schema applied once.
    #[tokio::test]
    async fn nodes_starting_together_migrate_once() {
        let Ok(url) = std::env::var("BANTER_TEST_MYSQL_URL") else {
            eprintln!("skipped: BANTER_TEST_MYSQL_URL is unset (see scripts/mariadb.sh)");
            return;
        };
        let (first, name) = MySqlStore::connect_fresh_database(&url)
            .await
            .expect("connect");
        // Empty it again: the racers below find a database without a schema.
        let options = MySqlConnectOptions::from_str(&url).expect("url");
        let mut conn = sqlx::MySqlConnection::connect_with(&options)
            .await
            .expect("connect");
        sqlx::query(AssertSqlSafe(format!("DROP DATABASE `{name}`")))
            .execute(&mut conn)
            .await
            .expect("drop");
        sqlx::query(AssertSqlSafe(format!(
            "CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
        )))
        .execute(&mut conn)
        .await
        .expect("create");
        let racers = (0..4).map(|_| MySqlStore::connect_with(options.clone().database(&name)));
        let stores = futures::future::join_all(racers).await;
        for s in &stores {
            assert!(s.is_ok(), "a racer failed: {:?}", s.as_ref().err());
        }
        let applied: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM `{name}`._sqlx_migrations WHERE version = 1"
        )))
        .fetch_one(&mut conn)
        .await
        .expect("count");
        assert_eq!(applied, 1);
        drop(stores);
        first.drop_database(&name).await.expect("drop");
    }
}
