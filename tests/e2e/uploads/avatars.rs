//! Avatars end to end, on each blob store: an image granted as an avatar, uploaded straight to
//! the store, set, seen by another user (who shares no room), refused when it is not an avatar's
//! upload or not an image, replaced (the former one deleted) and removed.

use anyhow::{Context, Result, ensure};
use serde_json::json;

use super::{Grant, Stored, png};
use banter_tests::unique;

impl Stored {
    /// Grants and uploads `file` as `content_type` as an avatar: the upload id.
    async fn avatar_uploaded(
        &self,
        token: &str,
        content_type: &str,
        file: Vec<u8>,
    ) -> Result<String> {
        let body = json!({"filename": "me.png", "content_type": content_type, "size": file.len()});
        let grant: Grant = self
            .node
            .api()
            .post("/api/users/me/avatar/uploads", Some(token), &body)
            .await?
            .parse(201)?;
        let status = self.upload(&grant, file).await?;
        ensure!((200..300).contains(&status), "upload: {status}");
        Ok(grant.upload_id)
    }
}

pub(super) async fn an_avatar_is_uploaded_set_seen_by_others_and_replaced(s: Stored) -> Result<()> {
    let api = s.node.api();
    let (alice, bob) = (api.new_user("alice").await?, api.new_user("bob").await?);
    let avatar_of = |id: i64| format!("/api/users/{id}/avatar");
    let none = api.get(&avatar_of(alice.id), Some(&bob.token)).await?;
    ensure!(
        none.status == 404 && none.body["error"]["code"] == "no_avatar",
        "{none:?}"
    );
    let upload = |content_type: &'static str, file: Vec<u8>| {
        s.avatar_uploaded(&alice.token, content_type, file)
    };
    let face = png(48, 48);
    let first = upload("image/png", face.clone()).await?;
    let key = format!("avatars/{}/{first}", alice.id);
    ensure!(s.object(&key).is_some(), "uploaded under the server's key");
    let set = |id: &str| {
        let body = json!({ "upload_id": id });
        let (api, token) = (api.clone(), alice.token.clone());
        async move {
            let path = "/api/users/me/avatar";
            api.call(reqwest::Method::PUT, path, Some(&token), Some(&body))
                .await
        }
    };
    let me = set(&first).await?.expect(200)?;
    ensure!(me["avatar_ref"] == first.as_str(), "{me}");
    // Bob, who shares no room with her, sees it: the same bytes.
    let signed = api
        .get(&avatar_of(alice.id), Some(&bob.token))
        .await?
        .expect(200)?;
    let (status, content_type, got) = s.fetch(signed["url"].as_str().context("url")?).await?;
    ensure!(status == 200 && got == face, "avatar: {status}");
    ensure!(content_type == "image/png", "{content_type}");
    let found = api
        .get(
            &format!("/api/users?prefix={}", alice.username),
            Some(&bob.token),
        )
        .await?
        .expect(200)?;
    ensure!(
        found.to_string().contains(&first),
        "others see its id: {found}"
    );
    // Refused: a PDF, an attachment's upload, HTML declared as PNG, the same one twice.
    let pdf = api
        .post(
            "/api/users/me/avatar/uploads",
            Some(&alice.token),
            &json!({"filename": "x.pdf", "content_type": "application/pdf", "size": 10}),
        )
        .await?;
    ensure!(
        pdf.status == 415 && pdf.body["error"]["code"] == "type_not_allowed",
        "{pdf:?}"
    );
    let room = api.create_room(&alice.token, &unique("media")).await?;
    let attachment = s
        .uploaded(&alice.token, room.id, "image/png", png(4, 4))
        .await?;
    let fake = upload("image/png", b"<html>not a png</html>".to_vec()).await?;
    for (id, status, code) in [
        (attachment.as_str(), 400, "not_an_avatar"),
        (fake.as_str(), 400, "type_mismatch"),
        (first.as_str(), 409, "already_attached"),
    ] {
        let refused = set(id).await?;
        ensure!(
            refused.status == status && refused.body["error"]["code"] == code,
            "{code}: {refused:?}"
        );
    }
    // Replaced: the first one is deleted; then removed.
    let second = upload("image/png", png(16, 16)).await?;
    set(&second).await?.expect(200)?;
    ensure!(s.object(&key).is_none(), "the replaced avatar is deleted");
    let me = api
        .call(
            reqwest::Method::DELETE,
            "/api/users/me/avatar",
            Some(&alice.token),
            None,
        )
        .await?
        .expect(200)?;
    ensure!(me["avatar_ref"].is_null(), "{me}");
    let gone = api.get(&avatar_of(alice.id), Some(&bob.token)).await?;
    ensure!(gone.status == 404, "{gone:?}");
    Ok(())
}
