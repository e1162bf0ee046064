//! Accounts and sessions in the shared database, on every backend: the
//! first account is created once, sessions open only what they should and
//! end when they must.

use picket_shared::accounts::{SESSION_IDLE_MS, SESSION_MAX_MS, hash_password, verify_password};
use picket_shared::now_ms;
use picket_testkit::db::backends;

#[tokio::test]
async fn the_first_account_is_created_once_even_by_racing_setups() {
    for t in backends().await {
        let db = &t.db;
        assert_eq!(db.account_count().await.unwrap(), 0, "{}", t.label);
        let hash = hash_password("Correct-Horse-9");
        let (a, b) = tokio::join!(
            db.create_first_account("admin", &hash),
            db.create_first_account("intruder", &hash)
        );
        // One wins; the other finds an account already there (or, on
        // InnoDB, loses a deadlock): never two accounts.
        let created = [a, b]
            .into_iter()
            .filter(|r| matches!(r, Ok(Some(_))))
            .count();
        assert_eq!(created, 1, "{}", t.label);
        assert_eq!(db.account_count().await.unwrap(), 1, "{}", t.label);
        assert_eq!(
            db.create_first_account("later", &hash).await.unwrap(),
            None,
            "{}: setup is closed",
            t.label
        );
    }
}

#[tokio::test]
async fn sessions_open_until_logout_expiry_idleness_or_a_new_password() {
    for t in backends().await {
        let db = &t.db;
        let id = db
            .create_first_account("admin", &hash_password("Correct-Horse-9"))
            .await
            .unwrap()
            .unwrap();
        let acc = db.account_by_name("admin").await.unwrap().unwrap();
        assert_eq!((acc.id, acc.active), (id, true));
        assert!(verify_password("Correct-Horse-9", &acc.password_hash));
        assert_eq!(db.account_by_name("nobody").await.unwrap(), None);

        let now = now_ms();
        let s = db.create_session(id).await.unwrap();
        let open = db.session(&s.token, now).await.unwrap().unwrap();
        assert_eq!((open.account_id, open.username.as_str()), (id, "admin"));
        assert_eq!(open.csrf, s.csrf);
        assert_eq!(db.session("forged-token", now).await.unwrap(), None);

        // Idle past the limit, or past the session's maximum age: closed.
        assert_eq!(
            db.session(&s.token, now + SESSION_IDLE_MS + 1)
                .await
                .unwrap(),
            None
        );
        assert_eq!(
            db.session(&s.token, now + SESSION_MAX_MS + 1)
                .await
                .unwrap(),
            None
        );
        // Used now and then, it stays open past one idle period.
        let later = now + SESSION_IDLE_MS / 2 + 1;
        assert!(db.session(&s.token, later).await.unwrap().is_some());
        assert!(
            db.session(&s.token, later + SESSION_IDLE_MS / 2 + 1)
                .await
                .unwrap()
                .is_some(),
            "{}: its use was recorded",
            t.label
        );

        // A new password ends the other sessions, not the one that set it.
        let other = db.create_session(id).await.unwrap();
        db.set_password(id, &hash_password("Another-Horse-10"), Some(&s.token))
            .await
            .unwrap();
        assert_eq!(
            db.session(&other.token, now).await.unwrap(),
            None,
            "{}",
            t.label
        );
        assert!(db.session(&s.token, now).await.unwrap().is_some());
        let acc = db.account_by_name("admin").await.unwrap().unwrap();
        assert!(verify_password("Another-Horse-10", &acc.password_hash));

        // Logout ends it; pruning removes what can no longer open.
        db.end_session(&s.token).await.unwrap();
        assert_eq!(db.session(&s.token, now).await.unwrap(), None);
        let stale = db.create_session(id).await.unwrap();
        assert_eq!(
            db.prune_sessions(now + SESSION_MAX_MS + 1).await.unwrap(),
            1
        );
        assert_eq!(
            db.session(&stale.token, now).await.unwrap(),
            None,
            "{}",
            t.label
        );
    }
}
