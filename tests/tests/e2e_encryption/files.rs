//! Files in an encrypted portal room against real Synapse: a Matrix user's
//! encrypted attachment reaches the remote side as its plaintext, and a
//! remote file reaches her as an encrypted attachment, of which the
//! homeserver holds only ciphertext. Run in each kind of portal by
//! [`crate::exchange`].

use brygga_core::{Attachment, EventBody, MediaSource, Message, Text};
use brygga_e2e::e2ee_env::{E2eeEnv, NET, WAIT};
use brygga_e2e::e2ee_user::E2eeUser;
use brygga_e2e::env::events::remote;

/// Bytes no two test files share, and no text.
fn file_bytes(len: u32, step: u32) -> Vec<u8> {
    (0..len).map(|i| (i.wrapping_mul(step) % 251) as u8).collect()
}

/// Alice sends a file into the portal and bob one back; each arrives whole.
pub(crate) async fn files_cross_both_ways(env: &E2eeEnv, alice: &E2eeUser, (remote_room, room): (&str, &str)) {
    let ghost = E2eeEnv::ghost("bob");

    // Matrix to remote: alice's encrypted attachment arrives as its plaintext.
    let plan = file_bytes(40_000, 7);
    alice.send_file(room, "plan.pdf", "application/pdf", plan.clone()).await.expect("alice sends a file");
    env.remote
        .wait_for(NET, WAIT, "alice's file", |sent| {
            sent.iter().any(|e| {
                e.room.as_str() == remote_room && matches!(&e.body, EventBody::Message(m) if !m.attachments.is_empty())
            })
        })
        .await;
    let sent = env.remote.sent(NET);
    let attachment = sent
        .iter()
        .filter(|e| e.room.as_str() == remote_room)
        .find_map(|e| match &e.body {
            EventBody::Message(m) => m.attachments.first().cloned(),
            _ => None,
        })
        .expect("an attachment");
    assert_eq!((attachment.name.as_str(), attachment.mime.as_str()), ("plan.pdf", "application/pdf"));
    let MediaSource::Remote { locator } = &attachment.source else { panic!("not re-uploaded: {attachment:?}") };
    let received = env.remote.media(NET, locator).expect("the file reached the remote side");
    assert!(received == plan, "the remote side got other bytes ({} of {})", received.len(), plan.len());

    // Remote to Matrix: the ghost's file comes encrypted, with `file`, not `url`.
    let scan = file_bytes(70_000, 13);
    env.remote.put_media(NET, "scan-1", scan.clone());
    let mut message = Message::text(Text::plain("the scan"));
    message.attachments.push(Attachment {
        name: "scan.png".into(),
        mime: "image/png".into(),
        size: Some(scan.len() as u64),
        source: MediaSource::Remote { locator: "scan-1".into() },
    });
    env.remote.inject(NET, remote(remote_room, "f1", "bob", EventBody::Message(message)));
    let image = alice
        .next_event_where(room, &ghost, WAIT, |e| e.is_undecryptable() || e.content["msgtype"] == "m.image")
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", env.bridge.log()));
    assert!(image.was_encrypted(), "the ghost's file came in clear: {image:#?}");
    assert_eq!(image.event_type, "m.room.message");
    assert_eq!(image.content["body"], "scan.png");
    assert_eq!(image.content["info"]["mimetype"], "image/png");
    assert!(image.content.get("url").is_none(), "an encrypted room's file has no url: {:#}", image.content);
    let mxc = image.content["file"]["url"].as_str().expect("the file's mxc");
    assert_eq!(image.content["file"]["v"], "v2");
    let opened = image.file.as_deref().expect("alice downloaded and decrypted the file");
    assert!(opened == scan.as_slice(), "alice got other bytes ({} of {})", opened.len(), scan.len());

    // What Synapse stores is ciphertext only.
    let stored = alice.download_stored(mxc).await.expect("the stored bytes");
    assert_eq!(stored.len(), scan.len(), "AES-CTR keeps the length");
    assert!(stored != scan, "the homeserver holds the plaintext");
    assert!(!stored.windows(64).any(|w| scan.starts_with(w)), "a plaintext prefix is stored");

    // The text part came too, and everything the ghost sent was encrypted.
    let text = alice.next_event(room, &ghost, WAIT).await.expect("the text part");
    assert_eq!(text.body(), Some("the scan"));
}
