//! The wire-compatibility diff: every change from a baseline descriptor set to the current one that
//! lets a peer of one version mis-read, reject or lose what a peer of the other sends. During a
//! rolling upgrade both directions happen, so a rule holds both ways.
//!
//! Elements are matched by full name (`whereabouts.ipam.v1.AllocateRequest`), which is what the
//! wire sees (gRPC paths name the package, service and method); moving an element to another file
//! is not a change. Additions are never reported.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{
    DescriptorProto, EnumDescriptorProto, FieldDescriptorProto, FileDescriptorSet, ServiceDescriptorProto,
};

/// Which rule a change breaks; tests match on it, people read [`Breaking`]'s text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// No current file declares a package of the baseline (its contents are not listed one by one).
    PackageRemoved,
    /// A message of the baseline is gone (a field of its type would no longer parse).
    MessageRemoved,
    /// A field's number is gone, and its number or name is not `reserved`. The number keeps a later
    /// field from being read as the old one; the name makes protoc refuse a later field of that name,
    /// which would print under the old name in `whereabouts-ctl --output json`.
    FieldRemoved,
    /// A field's name now sits at another number: old peers still send and read the old one.
    FieldRenumbered,
    /// A number now belongs to a field of another name: a reuse, or a rename (which old peers do not
    /// notice but `whereabouts-ctl --output json`, keyed by field name, does); the two look alike.
    FieldNumberReused,
    /// A field uses a number or name the baseline reserved (freed by an earlier removal).
    ReservedReused,
    /// Any change of a field's type, even between types protobuf parses as each other (int32 and
    /// int64, string and bytes): both versions write during a roll, and each direction must keep
    /// every value, which only the same type does.
    FieldTypeChanged,
    /// Singular ↔ repeated, or required ↔ not (proto3 `optional` is singular: no change).
    FieldCardinalityChanged,
    /// A field moved into, out of or between oneofs (proto3 `optional`'s synthetic oneof ignored).
    FieldOneofChanged,
    /// An enum of the baseline is gone.
    EnumRemoved,
    /// An enum value's number is gone and not `reserved`.
    EnumValueRemoved,
    /// A service is gone: old clients calling it get UNIMPLEMENTED.
    ServiceRemoved,
    /// An RPC is gone: old clients calling it get UNIMPLEMENTED.
    RpcRemoved,
    /// An RPC's request or response message is another one.
    RpcTypeChanged,
    /// An RPC's client or server side changed between unary and streaming.
    RpcStreamingChanged,
}

/// One wire-breaking change: the rule, the element it concerns (full name), what changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Breaking {
    /// The rule broken.
    pub rule: Rule,
    /// Full name of the baseline's element (`whereabouts.ipam.v1.Lease.pool`), or the current one's
    /// for a reserved number or name reused.
    pub element: String,
    /// What changed, in words.
    pub detail: String,
}

impl fmt::Display for Breaking {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} ({:?})", self.element, self.detail, self.rule)
    }
}

/// Every wire-breaking change from `baseline` to `current`, in a stable order: removed packages,
/// then messages (and their fields), enums, services, each by full name.
pub fn breaking_changes(baseline: &FileDescriptorSet, current: &FileDescriptorSet) -> Vec<Breaking> {
    let (old, new) = (Schema::of(baseline), Schema::of(current));
    let mut out = Report::default();
    let removed: BTreeSet<&str> = old.packages.difference(&new.packages).copied().collect();
    for package in &removed {
        out.push(Rule::PackageRemoved, package.to_string(), "package removed".into());
    }
    let kept = |package: &str| !removed.contains(package);
    for (name, old_msg) in old.messages.iter().filter(|(_, e)| kept(e.package)) {
        match new.messages.get(name) {
            Some(new_msg) => compare_message(name, old_msg.item, new_msg.item, &mut out),
            None => out.push(Rule::MessageRemoved, name.clone(), "message removed".into()),
        }
    }
    for (name, old_enum) in old.enums.iter().filter(|(_, e)| kept(e.package)) {
        match new.enums.get(name) {
            Some(new_enum) => compare_enum(name, old_enum.item, new_enum.item, &mut out),
            None => out.push(Rule::EnumRemoved, name.clone(), "enum removed".into()),
        }
    }
    for (name, old_svc) in old.services.iter().filter(|(_, e)| kept(e.package)) {
        match new.services.get(name) {
            Some(new_svc) => compare_service(name, old_svc.item, new_svc.item, &mut out),
            None => out.push(Rule::ServiceRemoved, name.clone(), "service removed".into()),
        }
    }
    out.0
}

/// The changes found so far, in the order found.
#[derive(Default)]
struct Report(Vec<Breaking>);

impl Report {
    fn push(&mut self, rule: Rule, element: String, detail: String) {
        self.0.push(Breaking { rule, element, detail });
    }
}

/// An element of a descriptor set and the package of the file declaring it.
struct Element<'a, T> {
    package: &'a str,
    item: &'a T,
}

/// A descriptor set's messages (nested ones included), enums and services by full name.
struct Schema<'a> {
    messages: BTreeMap<String, Element<'a, DescriptorProto>>,
    enums: BTreeMap<String, Element<'a, EnumDescriptorProto>>,
    services: BTreeMap<String, Element<'a, ServiceDescriptorProto>>,
    packages: BTreeSet<&'a str>,
}

impl<'a> Schema<'a> {
    fn of(set: &'a FileDescriptorSet) -> Self {
        let mut schema = Schema {
            messages: BTreeMap::new(),
            enums: BTreeMap::new(),
            services: BTreeMap::new(),
            packages: BTreeSet::new(),
        };
        for file in &set.file {
            let package = file.package();
            schema.packages.insert(package);
            schema.add_types(package, package, &file.message_type, &file.enum_type);
            for service in &file.service {
                let name = qualify(package, service.name());
                schema.services.insert(name, Element { package, item: service });
            }
        }
        schema
    }

    fn add_types(
        &mut self,
        package: &'a str,
        scope: &str,
        messages: &'a [DescriptorProto],
        enums: &'a [EnumDescriptorProto],
    ) {
        for item in enums {
            self.enums.insert(qualify(scope, item.name()), Element { package, item });
        }
        for item in messages {
            let name = qualify(scope, item.name());
            self.add_types(package, &name, &item.nested_type, &item.enum_type);
            self.messages.insert(name, Element { package, item });
        }
    }
}

/// `scope.name`, or `name` in a file without a package.
fn qualify(scope: &str, name: &str) -> String {
    if scope.is_empty() {
        name.to_string()
    } else {
        format!("{scope}.{name}")
    }
}

/// Fields by number: removed (unless reserved), renumbered, number taken by another name, type,
/// cardinality, oneof; then the current fields that use what the baseline reserved.
fn compare_message(name: &str, old: &DescriptorProto, new: &DescriptorProto, out: &mut Report) {
    let reserved_number =
        |number: i32, msg: &DescriptorProto| msg.reserved_range.iter().any(|r| (r.start()..r.end()).contains(&number));
    let reserved_name = |field: &str, msg: &DescriptorProto| msg.reserved_name.iter().any(|n| n == field);
    for old_field in &old.field {
        let element = qualify(name, old_field.name());
        let (number, field_name) = (old_field.number(), old_field.name());
        if let Some(new_field) = new.field.iter().find(|f| f.number() == number) {
            if new_field.name() != field_name {
                let detail = format!("number {number} is now field `{}`", new_field.name());
                out.push(Rule::FieldNumberReused, element.clone(), detail);
            }
            compare_field(&element, (old, old_field), (new, new_field), out);
        } else if let Some(moved) = new.field.iter().find(|f| f.name() == field_name) {
            let detail = format!("number {number} changed to {}", moved.number());
            out.push(Rule::FieldRenumbered, element, detail);
        } else {
            let mut missing = Vec::new();
            if !reserved_number(number, new) {
                missing.push(format!("number {number}"));
            }
            if !reserved_name(field_name, new) {
                missing.push(format!("name \"{field_name}\""));
            }
            if !missing.is_empty() {
                let detail = format!("field removed without reserving its {}", missing.join(" and "));
                out.push(Rule::FieldRemoved, element, detail);
            }
        }
    }
    for new_field in &new.field {
        let element = qualify(name, new_field.name());
        if reserved_number(new_field.number(), old) {
            let detail = format!("uses number {}, reserved in the baseline", new_field.number());
            out.push(Rule::ReservedReused, element.clone(), detail);
        }
        if reserved_name(new_field.name(), old) {
            out.push(Rule::ReservedReused, element, "uses a name reserved in the baseline".into());
        }
    }
}

fn compare_field(
    element: &str,
    (old_msg, old): (&DescriptorProto, &FieldDescriptorProto),
    (new_msg, new): (&DescriptorProto, &FieldDescriptorProto),
    out: &mut Report,
) {
    let (old_type, new_type) = (type_name(old), type_name(new));
    if old_type != new_type {
        let effect = if wire_kind(old.r#type()) == wire_kind(new.r#type()) {
            "same encoding, but a peer of either version truncates, misreads or rejects values the \
             other's type allows"
        } else {
            "another encoding: peers of either version drop or reject it"
        };
        let detail = format!("type {old_type} changed to {new_type} ({effect})");
        out.push(Rule::FieldTypeChanged, element.to_string(), detail);
    }
    if old.label() != new.label() {
        let detail = format!("{} changed to {}", label_name(old.label()), label_name(new.label()));
        out.push(Rule::FieldCardinalityChanged, element.to_string(), detail);
    }
    let (old_oneof, new_oneof) = (oneof_of(old_msg, old), oneof_of(new_msg, new));
    if old_oneof != new_oneof {
        let show = |o: Option<&str>| o.map_or("no oneof".to_string(), |o| format!("oneof `{o}`"));
        let detail = format!("{} changed to {}", show(old_oneof), show(new_oneof));
        out.push(Rule::FieldOneofChanged, element.to_string(), detail);
    }
}

/// A field's type as written in a `.proto` file: the scalar's name, or the message's or enum's full
/// name.
fn type_name(field: &FieldDescriptorProto) -> String {
    match field.r#type() {
        Type::Message | Type::Enum | Type::Group => field.type_name().trim_start_matches('.').into(),
        scalar => scalar.as_str_name().trim_start_matches("TYPE_").to_ascii_lowercase(),
    }
}

/// How a type is encoded on the wire; types of one kind parse as each other, though not always to
/// the same value.
fn wire_kind(ty: Type) -> &'static str {
    match ty {
        Type::Int32 | Type::Int64 | Type::Uint32 | Type::Uint64 | Type::Bool | Type::Enum => "varint",
        Type::Sint32 | Type::Sint64 => "zigzag varint",
        Type::Fixed32 | Type::Sfixed32 | Type::Float => "32-bit",
        Type::Fixed64 | Type::Sfixed64 | Type::Double => "64-bit",
        Type::String | Type::Bytes | Type::Message => "length-delimited",
        Type::Group => "group",
    }
}

/// A cardinality in words (proto3 fields without `repeated` are `LABEL_OPTIONAL`: singular).
fn label_name(label: Label) -> &'static str {
    match label {
        Label::Optional => "singular",
        Label::Required => "required",
        Label::Repeated => "repeated",
    }
}

/// The real oneof a field belongs to; a proto3 `optional` field's synthetic oneof does not count.
fn oneof_of<'m>(msg: &'m DescriptorProto, field: &FieldDescriptorProto) -> Option<&'m str> {
    if field.proto3_optional() {
        return None;
    }
    let index = usize::try_from(field.oneof_index?).ok()?;
    Some(msg.oneof_decl.get(index)?.name())
}

/// Enum values by number: removed (unless reserved), or reserved ones used again.
fn compare_enum(name: &str, old: &EnumDescriptorProto, new: &EnumDescriptorProto, out: &mut Report) {
    let reserved =
        |number: i32, e: &EnumDescriptorProto| e.reserved_range.iter().any(|r| (r.start()..=r.end()).contains(&number));
    for value in &old.value {
        let number = value.number();
        if !new.value.iter().any(|v| v.number() == number) && !reserved(number, new) {
            let detail = format!("value {number} removed without reserving its number");
            out.push(Rule::EnumValueRemoved, qualify(name, value.name()), detail);
        }
    }
    for value in &new.value {
        if reserved(value.number(), old) {
            let detail = format!("uses number {}, reserved in the baseline", value.number());
            out.push(Rule::ReservedReused, qualify(name, value.name()), detail);
        }
    }
}

/// RPCs by name: removed, request or response type, streaming on either side.
fn compare_service(name: &str, old: &ServiceDescriptorProto, new: &ServiceDescriptorProto, out: &mut Report) {
    for old_rpc in &old.method {
        let element = qualify(name, old_rpc.name());
        let Some(new_rpc) = new.method.iter().find(|m| m.name() == old_rpc.name()) else {
            out.push(Rule::RpcRemoved, element, "rpc removed".into());
            continue;
        };
        let types = [
            ("request", old_rpc.input_type(), new_rpc.input_type()),
            ("response", old_rpc.output_type(), new_rpc.output_type()),
        ];
        for (what, before, after) in types.into_iter().filter(|(_, b, a)| b != a) {
            let (before, after) = (before.trim_start_matches('.'), after.trim_start_matches('.'));
            let detail = format!("{what} type {before} changed to {after}");
            out.push(Rule::RpcTypeChanged, element.clone(), detail);
        }
        let streaming = [
            ("client", old_rpc.client_streaming(), new_rpc.client_streaming()),
            ("server", old_rpc.server_streaming(), new_rpc.server_streaming()),
        ];
        for (side, before, after) in streaming.into_iter().filter(|(_, b, a)| b != a) {
            let state = |s: bool| if s { "streaming" } else { "unary" };
            let detail = format!("{side} side changed from {} to {}", state(before), state(after));
            out.push(Rule::RpcStreamingChanged, element.clone(), detail);
        }
    }
}
