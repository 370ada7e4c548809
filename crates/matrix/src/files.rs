//! Encrypted files' keys: the spec's `EncryptedFile` JSON (an event's
//! `file`) to and from the canonical [`MatrixFile`].

use brygga_core::{FileKey, MatrixFile};
use serde_json::{Value, json};

/// The canonical file of an event's `file` object; an error names what is
/// wrong (never the key itself).
pub(crate) fn from_encrypted(file: &Value) -> Result<MatrixFile, &'static str> {
    let text = |value: &Value| value.as_str().filter(|s| !s.is_empty()).map(str::to_owned);
    let mxc = text(&file["url"]).filter(|u| u.starts_with("mxc://")).ok_or("encrypted file without mxc url")?;
    let k = text(&file["key"]["k"]).ok_or("encrypted file without key")?;
    let iv = text(&file["iv"]).ok_or("encrypted file without iv")?;
    let sha256 = text(&file["hashes"]["sha256"]).ok_or("encrypted file without sha256 hash")?;
    let version = text(&file["v"]).ok_or("encrypted file without version")?;
    Ok(MatrixFile::encrypted(mxc, FileKey::new(k, iv, sha256).with_version(version)))
}

/// The event's `file` object for an encrypted file; `None` for a clear one.
pub(crate) fn to_encrypted(file: &MatrixFile) -> Option<Value> {
    let mut value = key_json(file.key.as_ref()?);
    value["url"] = json!(file.mxc);
    Some(value)
}

/// The key as `EncryptedFile` JSON without `url`, as `brygga-crypto` takes it.
pub(crate) fn key_json(key: &FileKey) -> Value {
    json!({
        "v": key.version,
        "key": { "kty": "oct", "alg": "A256CTR", "ext": true, "key_ops": ["encrypt", "decrypt"], "k": key.k },
        "iv": key.iv,
        "hashes": { "sha256": key.sha256 },
    })
}

/// The key `brygga-crypto` made for a file, in canonical form.
pub(crate) fn key_from_json(key: &Value) -> Result<FileKey, &'static str> {
    let mut file = key.clone();
    file["url"] = json!("mxc://-/-");
    from_encrypted(&file)?.key.ok_or("no key")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_file() -> Value {
        json!({
            "url": "mxc://example.org/FHyPlCeYUSFFxlgbQYZmoEoe",
            "key": {"kty": "oct", "key_ops": ["encrypt", "decrypt"], "alg": "A256CTR",
                    "k": "aWF6-32KGYaC3A_FEUCk1Bt0JA37zP0wrStgmdCaW-0", "ext": true},
            "iv": "w+sE15fzSc0AAAAAAAAAAA",
            "hashes": {"sha256": "fdSLu/YkRx3Wyh3KQabP3rd6+SFiKg5lsJZQHtkSAYA"},
            "v": "v2"
        })
    }

    #[test]
    fn the_spec_example_round_trips() {
        let file = from_encrypted(&spec_file()).unwrap();
        assert_eq!(file.mxc, "mxc://example.org/FHyPlCeYUSFFxlgbQYZmoEoe");
        let key = file.key.clone().unwrap();
        assert_eq!((key.iv.as_str(), key.version.as_str()), ("w+sE15fzSc0AAAAAAAAAAA", "v2"));
        assert_eq!(to_encrypted(&file).unwrap(), spec_file());
        assert_eq!(key_from_json(&key_json(&key)).unwrap(), key);
        assert_eq!(to_encrypted(&MatrixFile::plain("mxc://hs/x")), None);
    }

    #[test]
    fn missing_parts_are_named() {
        for (part, pointer) in [("key", "/key/k"), ("iv", "/iv"), ("sha256", "/hashes/sha256"), ("url", "/url")] {
            let mut file = spec_file();
            *file.pointer_mut(pointer).unwrap() = Value::Null;
            let err = from_encrypted(&file).unwrap_err();
            assert!(err.contains(part), "{part}: {err}");
        }
        assert!(from_encrypted(&json!("garbage")).is_err());
    }
}
