//! Each rule of the wire diff, shown on the current tree's descriptors changed in code (they hold
//! every kind of element the rules name, more than the 0.1.0 baseline does): a breaking change is
//! reported once, naming its element; a compatible one (an addition, a move, proto3 `optional`)
//! is not reported at all.

use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{
    DescriptorProto, EnumDescriptorProto, EnumValueDescriptorProto, FieldDescriptorProto, FileDescriptorProto,
    FileDescriptorSet, MethodDescriptorProto, OneofDescriptorProto, ServiceDescriptorProto,
};

use super::diff::{breaking_changes, Breaking, Rule};

fn base() -> FileDescriptorSet {
    super::current()
}

/// The diff from `baseline` to a copy of it after `change`.
fn diff_after(baseline: &FileDescriptorSet, change: impl FnOnce(&mut FileDescriptorSet)) -> Vec<Breaking> {
    let mut current = baseline.clone();
    change(&mut current);
    breaking_changes(baseline, &current)
}

/// Asserts that `changes` is exactly one change, of `rule` on `element`, whose text names the
/// element and contains `detail`.
fn assert_only(changes: &[Breaking], rule: Rule, element: &str, detail: &str) {
    assert_eq!(changes.len(), 1, "expected one {rule:?} on {element}, got {changes:#?}");
    assert_eq!((changes[0].rule, changes[0].element.as_str()), (rule, element), "{changes:#?}");
    let text = changes[0].to_string();
    assert!(text.contains(element) && text.contains(detail), "`{detail}` not in: {text}");
}

fn file<'a>(set: &'a mut FileDescriptorSet, name: &str) -> &'a mut FileDescriptorProto {
    set.file.iter_mut().find(|f| f.name() == name).unwrap_or_else(|| panic!("no file {name}"))
}

/// A top-level message by full name.
fn message<'a>(set: &'a mut FileDescriptorSet, full: &str) -> &'a mut DescriptorProto {
    let (package, name) = full.rsplit_once('.').expect("full name");
    set.file
        .iter_mut()
        .filter(|f| f.package() == package)
        .flat_map(|f| f.message_type.iter_mut())
        .find(|m| m.name() == name)
        .unwrap_or_else(|| panic!("no message {full}"))
}

fn field<'a>(set: &'a mut FileDescriptorSet, full: &str) -> &'a mut FieldDescriptorProto {
    let (msg, name) = full.rsplit_once('.').expect("full name");
    let msg = message(set, msg);
    msg.field.iter_mut().find(|f| f.name() == name).unwrap_or_else(|| panic!("no field {full}"))
}

fn remove_field(set: &mut FileDescriptorSet, full: &str) {
    let (msg, name) = full.rsplit_once('.').expect("full name");
    message(set, msg).field.retain(|f| f.name() != name);
}

fn service<'a>(set: &'a mut FileDescriptorSet, full: &str) -> &'a mut ServiceDescriptorProto {
    let (package, name) = full.rsplit_once('.').expect("full name");
    set.file
        .iter_mut()
        .filter(|f| f.package() == package)
        .flat_map(|f| f.service.iter_mut())
        .find(|s| s.name() == name)
        .unwrap_or_else(|| panic!("no service {full}"))
}

fn rpc<'a>(set: &'a mut FileDescriptorSet, full: &str) -> &'a mut MethodDescriptorProto {
    let (svc, name) = full.rsplit_once('.').expect("full name");
    let svc = service(set, svc);
    svc.method.iter_mut().find(|m| m.name() == name).unwrap_or_else(|| panic!("no rpc {full}"))
}

fn scalar(name: &str, number: i32, ty: Type) -> FieldDescriptorProto {
    let mut field = FieldDescriptorProto { name: Some(name.into()), number: Some(number), ..Default::default() };
    field.set_label(Label::Optional);
    field.set_type(ty);
    field
}

const RELEASE_DEFERRED: &str = "whereabouts.ipam.v1.ReleaseRequest.deferred_ms";

/// Removes `ReleaseRequest.deferred_ms` (number 5), reserving what `number`/`name` say.
fn drop_deferred(set: &mut FileDescriptorSet, number: bool, name: bool) {
    remove_field(set, RELEASE_DEFERRED);
    let msg = message(set, "whereabouts.ipam.v1.ReleaseRequest");
    if number {
        msg.reserved_range.push(prost_types::descriptor_proto::ReservedRange { start: Some(5), end: Some(6) });
    }
    if name {
        msg.reserved_name.push("deferred_ms".into());
    }
}

#[test]
fn an_unchanged_set_reports_nothing() {
    assert_eq!(diff_after(&base(), |_| {}), []);
}

#[test]
fn a_removed_field_is_reported_unless_number_and_name_are_reserved() {
    let base = base();
    let none = diff_after(&base, |s| drop_deferred(s, false, false));
    assert_only(&none, Rule::FieldRemoved, RELEASE_DEFERRED, "its number 5 and name \"deferred_ms\"");
    let number_only = diff_after(&base, |s| drop_deferred(s, true, false));
    assert_only(&number_only, Rule::FieldRemoved, RELEASE_DEFERRED, "its name \"deferred_ms\" (");
    let name_only = diff_after(&base, |s| drop_deferred(s, false, true));
    assert_only(&name_only, Rule::FieldRemoved, RELEASE_DEFERRED, "its number 5 (");
    assert_eq!(diff_after(&base, |s| drop_deferred(s, true, true)), []);
}

#[test]
fn reusing_a_reserved_number_or_name_is_reported() {
    let mut later = base();
    drop_deferred(&mut later, true, true);
    let msg = "whereabouts.ipam.v1.ReleaseRequest";
    let by_number = diff_after(&later, |s| {
        message(s, msg).reserved_range.clear();
        message(s, msg).field.push(scalar("delay_ms", 5, Type::Uint64));
    });
    assert_only(&by_number, Rule::ReservedReused, &format!("{msg}.delay_ms"), "number 5");
    let by_name = diff_after(&later, |s| {
        message(s, msg).reserved_name.clear();
        message(s, msg).field.push(scalar("deferred_ms", 6, Type::Uint64));
    });
    assert_only(&by_name, Rule::ReservedReused, RELEASE_DEFERRED, "name reserved");
}

#[test]
fn a_renumbered_field_is_reported() {
    let element = "whereabouts.ipam.v1.AllocateRequest.network_name";
    let changes = diff_after(&base(), |s| field(s, element).number = Some(20));
    assert_only(&changes, Rule::FieldRenumbered, element, "number 2 changed to 20");
}

#[test]
fn a_number_under_another_name_is_reported() {
    let element = "whereabouts.ipam.v1.Lease.pool";
    let changes = diff_after(&base(), |s| field(s, element).name = Some("cidr".into()));
    assert_only(&changes, Rule::FieldNumberReused, element, "number 2 is now field `cidr`");
}

#[test]
fn a_changed_field_type_is_reported_scalar_or_named() {
    let term = "whereabouts.raft.v1.DescribeResponse.term";
    let to_string = diff_after(&base(), |s| field(s, term).set_type(Type::String));
    assert_only(&to_string, Rule::FieldTypeChanged, term, "uint64 changed to string (another encoding");
    // Same varint encoding, but an old peer truncates what a new one sends above 2^32.
    let narrower = diff_after(&base(), |s| field(s, term).set_type(Type::Uint32));
    assert_only(&narrower, Rule::FieldTypeChanged, term, "uint64 changed to uint32 (same encoding");
    let attachment = "whereabouts.ipam.v1.AllocateRequest.attachment";
    let other_message = diff_after(&base(), |s| {
        field(s, attachment).type_name = Some(".whereabouts.ipam.v1.Owner".into());
    });
    let detail = "whereabouts.ipam.v1.Attachment changed to whereabouts.ipam.v1.Owner";
    assert_only(&other_message, Rule::FieldTypeChanged, attachment, detail);
}

#[test]
fn singular_to_repeated_and_back_is_reported() {
    let static_ips = "whereabouts.ipam.v1.AllocateRequest.static_ips";
    let singular = diff_after(&base(), |s| field(s, static_ips).set_label(Label::Optional));
    assert_only(&singular, Rule::FieldCardinalityChanged, static_ips, "repeated changed to singular");
    let local = "whereabouts.ipam.v1.StatusRequest.local";
    let repeated = diff_after(&base(), |s| field(s, local).set_label(Label::Repeated));
    assert_only(&repeated, Rule::FieldCardinalityChanged, local, "singular changed to repeated");
    let required = diff_after(&base(), |s| field(s, local).set_label(Label::Required));
    assert_only(&required, Rule::FieldCardinalityChanged, local, "singular changed to required");
}

/// proto3 `optional` only adds presence; the encoding is the same (buf's WIRE and WIRE_JSON agree).
#[test]
fn adding_or_dropping_proto3_optional_is_not_reported() {
    let dropped = diff_after(&base(), |s| {
        let msg = message(s, "whereabouts.ipam.v1.SettingsRequest");
        assert_eq!(msg.oneof_decl.pop().map(|o| o.name().to_string()).as_deref(), Some("_history"));
        let history = msg.field.iter_mut().find(|f| f.name() == "history").expect("history");
        (history.proto3_optional, history.oneof_index) = (None, None);
    });
    assert_eq!(dropped, []);
    let added = diff_after(&base(), |s| {
        let msg = message(s, "whereabouts.ipam.v1.StatusRequest");
        msg.oneof_decl.push(OneofDescriptorProto { name: Some("_local".into()), options: None });
        let local = msg.field.iter_mut().find(|f| f.name() == "local").expect("local");
        (local.proto3_optional, local.oneof_index) = (Some(true), Some(0));
    });
    assert_eq!(added, []);
}

#[test]
fn a_field_moved_out_of_or_into_a_oneof_is_reported() {
    let conflict = "whereabouts.raft.v1.AppendEntriesResponse.conflict";
    let out_of = diff_after(&base(), |s| field(s, conflict).oneof_index = None);
    assert_only(&out_of, Rule::FieldOneofChanged, conflict, "oneof `result` changed to no oneof");
    // VoteResponse's only oneof so far is the synthetic one of `optional last_log_id`.
    let granted = "whereabouts.raft.v1.VoteResponse.vote_granted";
    let into = diff_after(&base(), |s| {
        let msg = message(s, "whereabouts.raft.v1.VoteResponse");
        msg.oneof_decl.push(OneofDescriptorProto { name: Some("decision".into()), options: None });
        field(s, granted).oneof_index = Some(1);
    });
    assert_only(&into, Rule::FieldOneofChanged, granted, "no oneof changed to oneof `decision`");
}

#[test]
fn removed_messages_services_rpcs_and_packages_are_reported() {
    let history = "whereabouts.ipam.v1.HistoryEntry";
    let message_gone = diff_after(&base(), |s| {
        file(s, "ipam.proto").message_type.retain(|m| m.name() != "HistoryEntry");
    });
    assert_only(&message_gone, Rule::MessageRemoved, history, "message removed");
    let service_gone = diff_after(&base(), |s| file(s, "raft.proto").service.clear());
    assert_only(&service_gone, Rule::ServiceRemoved, "whereabouts.raft.v1.Raft", "service removed");
    let gc = "whereabouts.ipam.v1.Ipam.Gc";
    let rpc_gone = diff_after(&base(), |s| {
        service(s, "whereabouts.ipam.v1.Ipam").method.retain(|m| m.name() != "Gc");
    });
    assert_only(&rpc_gone, Rule::RpcRemoved, gc, "rpc removed");
    // A whole package is one change, not one per element in it.
    let package_gone = diff_after(&base(), |s| s.file.retain(|f| f.name() != "raft.proto"));
    assert_only(&package_gone, Rule::PackageRemoved, "whereabouts.raft.v1", "package removed");
}

#[test]
fn a_changed_rpc_type_or_streaming_is_reported() {
    let gc = "whereabouts.ipam.v1.Ipam.Gc";
    let response = diff_after(&base(), |s| {
        rpc(s, gc).output_type = Some(".whereabouts.ipam.v1.MembershipResponse".into());
    });
    let detail = "response type whereabouts.ipam.v1.ReleaseResponse changed to \
                  whereabouts.ipam.v1.MembershipResponse";
    assert_only(&response, Rule::RpcTypeChanged, gc, detail);
    let request = diff_after(&base(), |s| {
        rpc(s, gc).input_type = Some(".whereabouts.ipam.v1.ReleaseRequest".into());
    });
    assert_only(&request, Rule::RpcTypeChanged, gc, "request type whereabouts.ipam.v1.GcRequest");
    let save = "whereabouts.ipam.v1.Ipam.SaveSnapshot";
    let unary = diff_after(&base(), |s| rpc(s, save).server_streaming = Some(false));
    assert_only(&unary, Rule::RpcStreamingChanged, save, "server side changed from streaming to unary");
    let allocate = "whereabouts.ipam.v1.Ipam.Allocate";
    let client = diff_after(&base(), |s| rpc(s, allocate).client_streaming = Some(true));
    assert_only(&client, Rule::RpcStreamingChanged, allocate, "client side changed from unary to streaming");
}

/// 0.1.0 has no enums: a baseline with `enum Role { UNSPECIFIED = 0; LEADER = 1; FOLLOWER = 2; }`
/// in `whereabouts.ipam.v1` (3 reserved).
fn base_with_enum() -> FileDescriptorSet {
    let value =
        |name: &str, number| EnumValueDescriptorProto { name: Some(name.into()), number: Some(number), options: None };
    let mut set = base();
    file(&mut set, "ipam.proto").enum_type.push(EnumDescriptorProto {
        name: Some("Role".into()),
        value: vec![value("UNSPECIFIED", 0), value("LEADER", 1), value("FOLLOWER", 2)],
        reserved_range: vec![prost_types::enum_descriptor_proto::EnumReservedRange { start: Some(3), end: Some(3) }],
        ..Default::default()
    });
    set
}

fn role(set: &mut FileDescriptorSet) -> &mut EnumDescriptorProto {
    file(set, "ipam.proto").enum_type.iter_mut().find(|e| e.name() == "Role").expect("Role")
}

#[test]
fn removed_enums_and_unreserved_enum_values_are_reported() {
    let base = base_with_enum();
    let gone = diff_after(&base, |s| file(s, "ipam.proto").enum_type.clear());
    assert_only(&gone, Rule::EnumRemoved, "whereabouts.ipam.v1.Role", "enum removed");
    let follower = "whereabouts.ipam.v1.Role.FOLLOWER";
    let value_gone = diff_after(&base, |s| role(s).value.retain(|v| v.name() != "FOLLOWER"));
    assert_only(&value_gone, Rule::EnumValueRemoved, follower, "value 2 removed");
    let reserved = diff_after(&base, |s| {
        role(s).value.retain(|v| v.name() != "FOLLOWER");
        role(s).reserved_range[0].start = Some(2);
    });
    assert_eq!(reserved, []);
    let reused = diff_after(&base, |s| {
        role(s).reserved_range.clear();
        role(s).value.push(EnumValueDescriptorProto { name: Some("LEARNER".into()), number: Some(3), options: None });
    });
    assert_only(&reused, Rule::ReservedReused, "whereabouts.ipam.v1.Role.LEARNER", "number 3");
}

#[test]
fn nested_types_are_compared_by_their_full_names() {
    let mut base = base();
    let mut detail = DescriptorProto { name: Some("Detail".into()), ..Default::default() };
    detail.field.push(scalar("reason", 1, Type::String));
    message(&mut base, "whereabouts.ipam.v1.StatusResponse").nested_type.push(detail);
    let changes = diff_after(&base, |s| {
        message(s, "whereabouts.ipam.v1.StatusResponse").nested_type[0].field.clear();
    });
    let element = "whereabouts.ipam.v1.StatusResponse.Detail.reason";
    assert_only(&changes, Rule::FieldRemoved, element, "number 1");
}

#[test]
fn every_change_is_reported_not_only_the_first() {
    let mut base = base();
    let rpcs = service(&mut base, "whereabouts.raft.v1.Raft").method.len();
    assert!(rpcs >= 3, "the Raft service has its RPCs");
    let changes = diff_after(&base, |s| {
        remove_field(s, RELEASE_DEFERRED);
        service(s, "whereabouts.raft.v1.Raft").method.clear();
    });
    let rules: Vec<Rule> = changes.iter().map(|c| c.rule).collect();
    let expected: Vec<Rule> =
        std::iter::once(Rule::FieldRemoved).chain(std::iter::repeat_n(Rule::RpcRemoved, rpcs)).collect();
    assert_eq!(rules, expected);
}

#[test]
fn additions_and_moves_between_files_are_not_reported() {
    let changes = diff_after(&base_with_enum(), |s| {
        message(s, "whereabouts.ipam.v1.Attachment").field.push(scalar("zone", 8, Type::String));
        let ipam = service(s, "whereabouts.ipam.v1.Ipam");
        let mut describe = ipam.method[0].clone();
        describe.name = Some("Describe".into());
        ipam.method.push(describe);
        role(s).value.push(EnumValueDescriptorProto { name: Some("WITNESS".into()), number: Some(4), options: None });
        let file_ipam = file(s, "ipam.proto");
        file_ipam.message_type.push(DescriptorProto { name: Some("Zone".into()), ..Default::default() });
        // HistoryEntry moves to a file of its own, same package.
        let at = file_ipam.message_type.iter().position(|m| m.name() == "HistoryEntry").expect("HistoryEntry");
        let history = file_ipam.message_type.remove(at);
        let package = file_ipam.package.clone();
        s.file.push(FileDescriptorProto {
            name: Some("history.proto".into()),
            package,
            message_type: vec![history],
            ..Default::default()
        });
        s.file.push(FileDescriptorProto {
            name: Some("ipam_v2.proto".into()),
            package: Some("whereabouts.ipam.v2".into()),
            ..Default::default()
        });
    });
    assert_eq!(changes, []);
}
