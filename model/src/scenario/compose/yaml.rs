//! The YAML layer of the Compose front end, and the only module that knows which YAML crate
//! reads the file (`saphyr`: YAML 1.2, pure Rust, a span for every node). The text becomes a
//! [`Value`] whose mapping keys carry their line and column: anchors and aliases resolved,
//! merge keys (`<<: *defaults`) applied, a duplicate key or a tag refused where it is. Typed
//! values (the services of `docker-compose-types`, our `x-aftershock` extensions) are read out
//! of a [`Value`] through its serde [`Deserializer`](serde::Deserializer) ([`from_value`]).

use saphyr::{LoadableYamlNode, MarkedYaml, Marker, Scalar, YamlData};
use serde::de::value::{MapAccessDeserializer, MapDeserializer, SeqDeserializer};
use serde::de::{self, IntoDeserializer, Visitor};

/// Where a key is in the file's text: 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark {
    pub line: usize,
    pub column: usize,
}

impl Mark {
    fn of(marker: &Marker) -> Mark {
        Mark {
            line: marker.line(),
            column: marker.col() + 1,
        }
    }
}

/// A YAML node: a scalar of the YAML 1.2 core schema, a list, or a mapping.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Value {
    #[default]
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    String(String),
    Sequence(Vec<Value>),
    Mapping(Mapping),
}

/// A mapping's entries in the file's order, each key with where it is.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Mapping(Vec<Entry>);

/// A key of a mapping, where it is, and its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    key: String,
    at: Mark,
    value: Value,
}

/// Text that is not one YAML document: what is wrong, and where.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntaxError {
    pub at: Mark,
    pub message: String,
}

/// A typed value could not be read out of a [`Value`] (serde's message: what was expected).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct Error(String);

impl de::Error for Error {
    fn custom<T: std::fmt::Display>(message: T) -> Self {
        Error(message.to_string())
    }
}

/// The most a file may become once its aliases are expanded (its scalars' bytes, [`NODE`] a
/// node): a few aliases of a large value, each list of them aliased again, would otherwise
/// make a 100 kB file hold gigabytes (a "billion laughs"; saphyr bounds only the number of
/// nodes).
const MAX_EXPANDED: usize = 4 << 20;
/// What a node counts for besides its text.
const NODE: usize = 64;

/// Refuses `text` where its aliases make it larger than [`MAX_EXPANDED`] bytes (errors of
/// the text itself are left to the loader, which says them better).
fn bounded_expansion(text: &str) -> Result<(), SyntaxError> {
    use saphyr_parser::{Event, Parser};
    let mut anchored = std::collections::HashMap::new();
    // The open lists and mappings: their anchor, and their size so far.
    let mut open: Vec<(usize, usize)> = vec![(0, 0)];
    for event in Parser::new_from_str(text) {
        let Ok((event, span)) = event else {
            return Ok(());
        };
        let (anchor, size) = match event {
            Event::Scalar(v, _, anchor, _) => (anchor, NODE + v.len()),
            Event::Alias(id) => (0, anchored.get(&id).copied().unwrap_or(NODE)),
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                open.push((anchor, NODE));
                continue;
            }
            Event::SequenceEnd | Event::MappingEnd if open.len() > 1 => {
                open.pop().unwrap_or_default()
            }
            _ => continue,
        };
        if anchor != 0 {
            anchored.insert(anchor, size);
        }
        let parent = &mut open
            .last_mut()
            .expect("the stream's own entry is never popped")
            .1;
        *parent = parent.saturating_add(size);
        if *parent > MAX_EXPANDED {
            return Err(SyntaxError {
                at: Mark::of(&span.start),
                message: format!(
                    "with its aliases expanded the file is over {} MiB (alias less, or write less)",
                    MAX_EXPANDED >> 20
                ),
            });
        }
    }
    Ok(())
}

/// The most closers [`load`] indents before it gives up.
const MAX_CLOSERS: usize = 256;

/// The one YAML document of `text` (`Null` when there is none).
pub fn parse(text: &str) -> Result<Value, SyntaxError> {
    bounded_expansion(text)?;
    load(text)
}

/// The one document of `docs` as a [`Value`].
fn document(docs: Vec<MarkedYaml<'_>>) -> Result<Value, SyntaxError> {
    let mut docs = docs.into_iter();
    let Some(doc) = docs.next() else {
        return Ok(Value::Null);
    };
    if let Some(second) = docs.next() {
        return Err(SyntaxError {
            at: Mark::of(&second.span.start),
            message: "a second YAML document (after `---`): a Compose file holds one".into(),
        });
    }
    node(doc)
}

/// The documents of `text`, read as `docker compose` reads them: a flow list's or mapping's
/// closing `]`/`}` on a line of its own, indented no more than the key that holds it
/// (`command: [` … `]` at the key's column), is YAML 1.2 that saphyr refuses ("invalid
/// indentation") and go-yaml accepts; such a line is indented one more space and read again.
/// Lines keep their numbers (only that line's columns move).
fn load(text: &str) -> Result<Value, SyntaxError> {
    let mut text = std::borrow::Cow::Borrowed(text);
    for _ in 0..MAX_CLOSERS {
        let e = match MarkedYaml::load_from_str(&text) {
            Ok(docs) => return document(docs),
            Err(e) => e,
        };
        let at = Mark::of(e.marker());
        let error = SyntaxError {
            at,
            message: e.info().to_string(),
        };
        let closer = text.lines().nth(at.line.saturating_sub(1)).filter(|l| {
            e.info() == "invalid indentation" && l.trim_start().starts_with([']', '}'])
        });
        if closer.is_none() {
            return Err(error);
        }
        let mut lines: Vec<&str> = text.lines().collect();
        let indented = format!(" {}", lines[at.line - 1]);
        lines[at.line - 1] = &indented;
        text = std::borrow::Cow::Owned(lines.join("\n"));
    }
    Err(SyntaxError {
        at: Mark { line: 1, column: 1 },
        message: format!("more than {MAX_CLOSERS} flow closers indented too little"),
    })
}

/// A typed value read out of `value` (as `serde_yaml::from_value` did).
pub fn from_value<T: de::DeserializeOwned>(value: Value) -> Result<T, Error> {
    T::deserialize(value)
}

fn node(n: MarkedYaml) -> Result<Value, SyntaxError> {
    let at = Mark::of(&n.span.start);
    let refuse = |message: String| Err(SyntaxError { at, message });
    match n.data {
        YamlData::Value(s) => Ok(scalar(s)),
        YamlData::Representation(text, style, tag) => {
            match Scalar::parse_from_cow_and_metadata(text, style, tag.as_ref()) {
                Some(s) => Ok(scalar(s)),
                None => refuse("a value that does not fit its YAML tag".into()),
            }
        }
        YamlData::Sequence(items) => Ok(Value::Sequence(
            items.into_iter().map(node).collect::<Result<_, _>>()?,
        )),
        YamlData::Mapping(map) => mapping(map.into_iter().collect()).map(Value::Mapping),
        YamlData::Tagged(tag, _) => refuse(format!(
            "the YAML tag `{tag}` is not supported (remove it; Compose's `!reset` and `!override` belong to override files)"
        )),
        YamlData::Alias(_) | YamlData::BadValue => {
            refuse("a value that does not fit its YAML tag, or an alias of no anchor".into())
        }
    }
}

fn scalar(s: Scalar) -> Value {
    match s {
        Scalar::Null => Value::Null,
        Scalar::Boolean(b) => Value::Bool(b),
        Scalar::Integer(i) => Value::Int(i),
        Scalar::FloatingPoint(f) => Value::Float(f.into_inner()),
        Scalar::String(s) => Value::String(s.into_owned()),
    }
}

/// A mapping's entries, a merge key's in its place: the mapping's own keys win over merged
/// ones, and among merged mappings the first that has a key gives it (YAML's merge key).
fn mapping(entries: Vec<(MarkedYaml, MarkedYaml)>) -> Result<Mapping, SyntaxError> {
    let mut own: Vec<Entry> = vec![];
    let mut merged: Option<(usize, Vec<Entry>)> = None;
    for (k, v) in entries {
        let at = Mark::of(&k.span.start);
        let key = match node(k)? {
            Value::String(s) => s,
            Value::Int(i) => i.to_string(),
            Value::Float(f) => f.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Null => "null".into(),
            Value::Sequence(_) | Value::Mapping(_) => {
                let message = "a mapping's key must be a plain value, not a list or a mapping";
                return Err(SyntaxError {
                    at,
                    message: message.into(),
                });
            }
        };
        let value = node(v)?;
        if key == "<<" {
            merged = Some((own.len(), merge_sources(value, at)?));
        } else {
            own.push(Entry { key, at, value });
        }
    }
    if let Some((i, from)) = merged {
        let mut added: Vec<Entry> = vec![];
        for e in from {
            if !own.iter().chain(&added).any(|o| o.key == e.key) {
                added.push(e);
            }
        }
        own.splice(i..i, added);
    }
    Ok(Mapping(own))
}

/// The mappings a merge key names: `<<: *a` or `<<: [*a, *b]`.
fn merge_sources(value: Value, at: Mark) -> Result<Vec<Entry>, SyntaxError> {
    let refuse = || SyntaxError {
        at,
        message: "a merge key `<<` takes a mapping or a list of mappings (`<<: *defaults`)".into(),
    };
    match value {
        Value::Mapping(m) => Ok(m.0),
        Value::Sequence(items) => {
            let mut out = vec![];
            for item in items {
                let Value::Mapping(m) = item else {
                    return Err(refuse());
                };
                out.extend(m.0);
            }
            Ok(out)
        }
        _ => Err(refuse()),
    }
}

impl Value {
    /// The value of `key` when this is a mapping that has it.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.as_mapping()?.get(key)
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        let Value::Mapping(m) = self else { return None };
        m.0.iter_mut().find(|e| e.key == key).map(|e| &mut e.value)
    }

    pub fn as_mapping(&self) -> Option<&Mapping> {
        match self {
            Value::Mapping(m) => Some(m),
            _ => None,
        }
    }

    pub fn as_mapping_mut(&mut self) -> Option<&mut Mapping> {
        match self {
            Value::Mapping(m) => Some(m),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// A number (whole or not) as a float.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// Where the key at `path` is, or the deepest of its ancestors found (a list is looked
    /// through: the first of its mappings that has the key); `None` when not even the first
    /// key is.
    pub fn locate(&self, path: &[String]) -> Option<Mark> {
        let mut node = self;
        let mut found = None;
        for key in path {
            let Some(entry) = node.entry(key) else { break };
            found = Some(entry.at);
            node = &entry.value;
        }
        found
    }

    /// Where the key at `path` is, when every key of the path is there.
    pub fn find(&self, path: &[String]) -> Option<Mark> {
        let mut node = self;
        let mut found = None;
        for key in path {
            let entry = node.entry(key)?;
            found = Some(entry.at);
            node = &entry.value;
        }
        found
    }

    fn entry(&self, key: &str) -> Option<&Entry> {
        match self {
            Value::Mapping(m) => m.0.iter().find(|e| e.key == key),
            Value::Sequence(items) => items.iter().find_map(|i| i.entry(key)),
            _ => None,
        }
    }
}

impl Mapping {
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.iter().find(|e| e.key == key).map(|e| &e.value)
    }

    /// Adds `key` (written at `at`) at the end; the caller sees it is not there yet.
    pub fn push(&mut self, key: String, at: Mark, value: Value) {
        self.0.push(Entry { key, at, value });
    }

    /// The entries: key, where it is, value.
    pub fn into_entries(self) -> impl Iterator<Item = (String, Mark, Value)> {
        self.0.into_iter().map(|e| (e.key, e.at, e.value))
    }

    /// Takes `key` out of the mapping.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        let i = self.0.iter().position(|e| e.key == key)?;
        Some(self.0.remove(i).value)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.0.iter().map(|e| (e.key.as_str(), &e.value))
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&str, &mut Value)> {
        self.0.iter_mut().map(|e| (e.key.as_str(), &mut e.value))
    }

    /// Where each key is written: a key merged in (`<<: *x`) or aliased is where the anchored
    /// mapping has it, so two mappings that share an anchor share these marks.
    pub fn marks(&self) -> impl Iterator<Item = Mark> + '_ {
        self.0.iter().map(|e| e.at)
    }
}

impl IntoIterator for Mapping {
    type Item = (String, Value);
    type IntoIter = std::iter::Map<std::vec::IntoIter<Entry>, fn(Entry) -> (String, Value)>;

    fn into_iter(self) -> Self::IntoIter {
        fn pair(e: Entry) -> (String, Value) {
            (e.key, e.value)
        }
        self.0.into_iter().map(pair as fn(Entry) -> (String, Value))
    }
}

impl<'de> IntoDeserializer<'de, Error> for Value {
    type Deserializer = Value;

    fn into_deserializer(self) -> Value {
        self
    }
}

/// Reads a typed value out of a [`Value`] as `serde_yaml`'s `Value` did: numbers visit as
/// `u64` when not negative, `null` is `()` or `None`, an enum is a string (a unit variant) or
/// a mapping of one key (the variant and its content).
impl<'de> de::Deserializer<'de> for Value {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(b),
            Value::Int(i) => match u64::try_from(i) {
                Ok(u) => visitor.visit_u64(u),
                Err(_) => visitor.visit_i64(i),
            },
            Value::Float(f) => visitor.visit_f64(f),
            Value::String(s) => visitor.visit_string(s),
            Value::Sequence(items) => {
                let mut seq = SeqDeserializer::new(items.into_iter());
                let out = visitor.visit_seq(&mut seq)?;
                seq.end()?;
                Ok(out)
            }
            Value::Mapping(m) => {
                let mut map = MapDeserializer::new(m.into_iter());
                let out = visitor.visit_map(&mut map)?;
                map.end()?;
                Ok(out)
            }
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self {
            Value::Null => visitor.visit_none(),
            other => visitor.visit_some(other),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self {
            Value::String(s) => visitor.visit_enum(s.into_deserializer()),
            Value::Mapping(m) if m.0.len() == 1 => visitor.visit_enum(MapAccessDeserializer::new(
                MapDeserializer::new(m.into_iter()),
            )),
            other => other.deserialize_any(visitor),
        }
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map struct
        identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn path(p: &[&str]) -> Vec<String> {
        p.iter().map(|s| s.to_string()).collect()
    }

    fn at(value: &Value, p: &[&str]) -> Option<(usize, usize)> {
        value.locate(&path(p)).map(|m| (m.line, m.column))
    }

    #[test]
    fn keys_carry_their_line_and_column() {
        let text = "services:\n  db:\n    image: x\n    # a comment\n    deploy:\n      placement: {}\n  api: { image: y, \"privileged\": true }\n";
        let v = parse(text).unwrap();
        assert_eq!(
            at(&v, &["services", "db", "deploy", "placement"]),
            Some((6, 7))
        );
        assert_eq!(at(&v, &["services", "api", "privileged"]), Some((7, 20)));
        // Not under `db`: the deepest ancestor found; nothing found: None.
        assert_eq!(at(&v, &["services", "db", "privileged"]), Some((2, 3)));
        assert_eq!(at(&v, &["secrets"]), None);
        // Through a list: the first of its mappings that has the key.
        let v = parse("volumes:\n  - type: volume\n  - source: d\n").unwrap();
        assert_eq!(at(&v, &["volumes", "source"]), Some((3, 5)));
    }

    #[test]
    fn merge_keys_are_applied_where_they_are() {
        let text = "x-base: &base\n  restart: always\n  image: base\nx-more: &more\n  user: \"1\"\n  restart: never\nservices:\n  db:\n    image: own\n    <<: [*base, *more]\n    working_dir: /w\n";
        let v = parse(text).unwrap();
        let db = v.get("services").and_then(|s| s.get("db")).unwrap();
        let keys: Vec<&str> = db.as_mapping().unwrap().iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["image", "restart", "user", "working_dir"]);
        assert_eq!(
            db.get("image").and_then(Value::as_str),
            Some("own"),
            "own keys win"
        );
        assert_eq!(
            db.get("restart").and_then(Value::as_str),
            Some("always"),
            "the first merged mapping wins"
        );
        // A merged key is where it is written: in the anchored mapping.
        assert_eq!(at(&v, &["services", "db", "user"]), Some((5, 3)));
        let e = parse("a: &a 1\nb:\n  <<: *a\n").unwrap_err();
        assert_eq!((e.at.line, e.at.column), (3, 3));
        assert!(e.message.contains("merge key"), "{}", e.message);
    }

    #[test]
    fn what_is_not_one_plain_document_is_refused_where_it_is() {
        let cases: &[(&str, (usize, usize), &str)] = &[
            ("a:\n  b: 1\n  b: 2\n", (3, 3), "duplicated key"),
            ("a: [1\n", (2, 1), "flow sequence"),
            ("a: 1\n---\nb: 2\n", (3, 1), "second YAML document"),
            ("a:\n  b: !reset []\n", (2, 6), "`!reset`"),
            ("a: *nope\n", (1, 4), ""),
        ];
        for (text, (line, column), needle) in cases {
            let e = parse(text).unwrap_err();
            assert_eq!((e.at.line, e.at.column), (*line, *column), "{text}: {e:?}");
            assert!(e.message.contains(needle), "{text}: {e:?}");
        }
        assert_eq!(parse("").unwrap(), Value::Null);
        assert_eq!(parse("# only a comment\n").unwrap(), Value::Null);
    }

    #[test]
    fn scalars_follow_yaml_1_2() {
        let v = parse("a: yes\nb: 0o17\nc: 1.5\nd: ~\ne: \"5\"\nf: -3\ng: true\n").unwrap();
        let got: Vec<Value> = v
            .as_mapping()
            .unwrap()
            .iter()
            .map(|(_, v)| v.clone())
            .collect();
        assert_eq!(
            got,
            [
                Value::String("yes".into()),
                Value::Int(15),
                Value::Float(1.5),
                Value::Null,
                Value::String("5".into()),
                Value::Int(-3),
                Value::Bool(true),
            ]
        );
    }

    #[derive(Debug, PartialEq, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Typed {
        n: u16,
        neg: i32,
        maybe: Option<String>,
        absent: Option<String>,
        list: Vec<f64>,
        map: BTreeMap<String, Either>,
        unit: Kind,
        tagged: Kind,
    }

    #[derive(Debug, PartialEq, serde::Deserialize)]
    #[serde(untagged)]
    enum Either {
        Text(String),
        Number(u64),
    }

    #[derive(Debug, PartialEq, serde::Deserialize)]
    #[serde(rename_all = "lowercase")]
    enum Kind {
        Plain,
        Sized(u32),
    }

    #[test]
    fn typed_values_are_read_through_serde() {
        let text = "n: 8080\nneg: -1\nmaybe: ~\nlist: [1, 2.5]\nmap: { a: x, b: 2 }\nunit: plain\ntagged: { sized: 3 }\n";
        let t: Typed = from_value(parse(text).unwrap()).unwrap();
        assert_eq!(
            t,
            Typed {
                n: 8080,
                neg: -1,
                maybe: None,
                absent: None,
                list: vec![1.0, 2.5],
                map: [
                    ("a".into(), Either::Text("x".into())),
                    ("b".into(), Either::Number(2))
                ]
                .into(),
                unit: Kind::Plain,
                tagged: Kind::Sized(3),
            }
        );
        let e = from_value::<Typed>(parse("n: 70000\n").unwrap()).unwrap_err();
        assert!(e.to_string().contains("70000"), "{e}");
        let e = from_value::<Typed>(parse("bogus: 1\n").unwrap()).unwrap_err();
        assert!(e.to_string().contains("unknown field `bogus`"), "{e}");
    }
}
