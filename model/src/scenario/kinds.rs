//! Kind names: how a file names a kind of service, probe, fault or expectation. The names come
//! from one place, the enum's `#[strum(serialize_all = "kebab-case")]` derive; the file's
//! reading and writing ([`named!`]) and every message that lists kinds ([`one_of`]) use it.

/// Gives a unit kind enum (deriving strum's `IntoStaticStr`, `EnumString`,
/// `EnumVariantNames` and `EnumIter`) its `name()`, and serde through that name: what a file
/// writes is exactly `name()`, and an unknown name is refused with every known one listed
/// (serde's own "unknown variant" error, at the value's place in the file).
macro_rules! named {
    ($kind:ty) => {
        impl $kind {
            /// The kind's name as a file writes it (`kebab-case`).
            pub fn name(self) -> &'static str {
                self.into()
            }

            /// Every kind, in declaration order.
            pub fn all() -> impl Iterator<Item = $kind> {
                <$kind as strum::IntoEnumIterator>::iter()
            }
        }

        impl std::fmt::Display for $kind {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }

        impl serde::Serialize for $kind {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.name())
            }
        }

        impl<'de> serde::Deserialize<'de> for $kind {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let name = String::deserialize(d)?;
                name.parse().map_err(|_| {
                    let names = <$kind as strum::VariantNames>::VARIANTS;
                    <D::Error as serde::de::Error>::unknown_variant(&name, names)
                })
            }
        }
    };
}
pub(crate) use named;

/// `a`, `a or b`, `a, b or c`: kind names for a message.
pub(crate) fn one_of<K: std::fmt::Display>(kinds: impl IntoIterator<Item = K>) -> String {
    let names: Vec<String> = kinds.into_iter().map(|k| k.to_string()).collect();
    match names.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::one_of;
    use crate::scenario::file::{ExpectationKind, FaultKind, Preset, ProbeKind};

    /// Every kind reads back from its own name, and an unknown name lists them all.
    fn round_trips<K>(all: impl Iterator<Item = K>)
    where
        K: Copy + PartialEq + std::fmt::Debug + std::fmt::Display,
        K: serde::Serialize + serde::de::DeserializeOwned,
    {
        let mut names = vec![];
        for kind in all {
            let text = format!("k = \"{kind}\"");
            let back: std::collections::BTreeMap<String, K> = toml::from_str(&text).unwrap();
            assert_eq!(back["k"], kind, "{text}");
            assert_eq!(toml::to_string(&back).unwrap().trim(), text);
            names.push(kind.to_string());
        }
        let e = toml::from_str::<std::collections::BTreeMap<String, K>>("k = \"nope\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown variant `nope`"), "{e}");
        assert!(e.contains(&format!("`{}`", names.join("`, `"))), "{e}");
    }

    #[test]
    fn every_kind_is_read_and_written_by_its_one_name() {
        round_trips(FaultKind::all());
        round_trips(ProbeKind::all());
        round_trips(ExpectationKind::all());
        round_trips(Preset::all());
        assert_eq!(FaultKind::RollingRestart.name(), "rolling-restart");
        assert_eq!(ProbeKind::RegistryPull.name(), "registry-pull");
        assert_eq!(ExpectationKind::OomKillWithin.name(), "oom-kill-within");
        assert_eq!(Preset::ToyApi.name(), "toy-api");
    }

    #[test]
    fn kinds_are_listed_as_words() {
        assert_eq!(one_of(Vec::<String>::new()), "");
        assert_eq!(one_of(["kill"]), "kill");
        assert_eq!(one_of(["kill", "stop", "pause"]), "kill, stop or pause");
    }
}
