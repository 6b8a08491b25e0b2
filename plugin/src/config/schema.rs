//! The shape of a network configuration as whereabouts' Go structs declare it (`pkg/types`:
//! `Net`, `IPAMConfig`'s decoding alias, `RangeConfiguration`, `Address`, `KubernetesConfig`; CNI's
//! `types.Route` and `types.DNS`), plus the keys whereabouts-rs adds. Field order is declaration
//! order: Go's `encoding/json` gives a key that matches no field exactly to the *first* field whose
//! name matches it case-insensitively (see [`super::go_fields`]), so `"GATEWAY"` is `gateway` and
//! only the exact `"Gateway"` is the untagged field of that name.

/// How the keys below a value are matched.
#[derive(Debug)]
pub enum Shape {
    /// A scalar, or a value whose keys are kept as written (`prevResult`).
    Opaque,
    /// A Go struct.
    Struct(&'static Fields),
    /// A list of values of one shape.
    List(&'static Shape),
}

/// The fields of one struct, in declaration order.
#[derive(Debug)]
pub struct Fields {
    /// JSON names and shapes.
    pub fields: &'static [(&'static str, Shape)],
    /// Keys matching no field are kept as written (the network configuration carries the
    /// interface plugin's own keys); otherwise they are dropped with a warning.
    pub keep_unknown: bool,
}

impl Fields {
    /// The shape of field `name`.
    pub fn shape_of(&self, name: &str) -> Option<&'static Shape> {
        self.fields.iter().find(|(n, _)| *n == name).map(|(_, s)| s)
    }
}

/// A network configuration (libcni's `NetConf`, whereabouts' `Net`) or one plugin of a list.
pub static NETCONF: Fields = Fields {
    fields: &[
        ("name", Shape::Opaque),
        ("cniVersion", Shape::Opaque),
        ("ipam", Shape::Struct(&IPAM)),
        ("cniVersions", Shape::Opaque),
        ("type", Shape::Opaque),
        ("runtimeConfig", Shape::Struct(&RUNTIME_CONFIG)),
        ("args", Shape::Struct(&ARGS)),
        ("prevResult", Shape::Opaque),
        ("plugins", Shape::List(&NETCONF_SHAPE)),
        ("cni.dev/valid-attachments", Shape::Opaque),
    ],
    keep_unknown: true,
};

static NETCONF_SHAPE: Shape = Shape::Struct(&NETCONF);

/// The `ipam` section (inline or flat file): whereabouts' `IPAMConfig` decoding alias in its
/// declaration order, then the keys of whereabouts-rs.
pub static IPAM: Fields = Fields {
    fields: &[
        ("Name", Shape::Opaque),
        ("type", Shape::Opaque),
        ("routes", Shape::List(&ROUTE_SHAPE)),
        ("datastore", Shape::Opaque),
        ("addresses", Shape::List(&ADDRESS_SHAPE)),
        ("ipRanges", Shape::List(&RANGE_SHAPE)),
        ("node_slice_size", Shape::Opaque),
        ("exclude", Shape::Opaque),
        ("dns", Shape::Struct(&DNS)),
        ("range", Shape::Opaque),
        ("range_start", Shape::Opaque),
        ("range_end", Shape::Opaque),
        ("gateway", Shape::Opaque),
        ("etcd_host", Shape::Opaque),
        ("etcd_username", Shape::Opaque),
        ("etcd_password", Shape::Opaque),
        ("etcd_key_file", Shape::Opaque),
        ("etcd_cert_file", Shape::Opaque),
        ("etcd_ca_cert_file", Shape::Opaque),
        ("leader_lease_duration", Shape::Opaque),
        ("leader_renew_deadline", Shape::Opaque),
        ("leader_retry_period", Shape::Opaque),
        ("log_file", Shape::Opaque),
        ("log_level", Shape::Opaque),
        ("reconciler_cron_expression", Shape::Opaque),
        ("enable_overlapping_ranges", Shape::Opaque),
        ("sleep_for_race", Shape::Opaque),
        ("Gateway", Shape::Opaque),
        ("kubernetes", Shape::Struct(&KUBERNETES)),
        ("configuration_path", Shape::Opaque),
        ("PodName", Shape::Opaque),
        ("PodNamespace", Shape::Opaque),
        ("network_name", Shape::Opaque),
        // whereabouts-rs
        ("endpoints", Shape::Opaque),
        ("timeout_seconds", Shape::Opaque),
        ("tls_ca", Shape::Opaque),
        ("tls_cert", Shape::Opaque),
        ("tls_key", Shape::Opaque),
        ("node_name", Shape::Opaque),
        ("strict_del", Shape::Opaque),
        ("state_dir", Shape::Opaque),
    ],
    keep_unknown: false,
};

/// The `ipam` keys whose values are structs merged field by field with the flat file.
pub const IPAM_STRUCTS: [&str; 2] = ["dns", "kubernetes"];

static RANGE_SHAPE: Shape = Shape::Struct(&RANGE);
/// One `ipRanges` entry (`RangeConfiguration`).
pub static RANGE: Fields = Fields {
    fields: &[
        ("exclude", Shape::Opaque),
        ("range", Shape::Opaque),
        ("range_start", Shape::Opaque),
        ("range_end", Shape::Opaque),
    ],
    keep_unknown: false,
};

static ROUTE_SHAPE: Shape = Shape::Struct(&ROUTE);
/// One route (CNI `types.Route`).
pub static ROUTE: Fields = Fields {
    fields: &[
        ("dst", Shape::Opaque),
        ("gw", Shape::Opaque),
        ("mtu", Shape::Opaque),
        ("advmss", Shape::Opaque),
        ("priority", Shape::Opaque),
        ("table", Shape::Opaque),
        ("scope", Shape::Opaque),
    ],
    keep_unknown: false,
};

static ADDRESS_SHAPE: Shape = Shape::Struct(&ADDRESS);
/// One `addresses` entry.
pub static ADDRESS: Fields =
    Fields { fields: &[("address", Shape::Opaque), ("gateway", Shape::Opaque)], keep_unknown: false };

/// `dns` (CNI `types.DNS`).
pub static DNS: Fields = Fields {
    fields: &[
        ("nameservers", Shape::Opaque),
        ("domain", Shape::Opaque),
        ("search", Shape::Opaque),
        ("options", Shape::Opaque),
    ],
    keep_unknown: false,
};

/// `kubernetes` (whereabouts' `KubernetesConfig`; read by nothing here).
pub static KUBERNETES: Fields =
    Fields { fields: &[("kubeconfig", Shape::Opaque), ("k8s_api_root", Shape::Opaque)], keep_unknown: false };

/// `runtimeConfig`: the `ips` capability; every other capability is kept as written.
pub static RUNTIME_CONFIG: Fields = Fields { fields: &[("ips", Shape::Opaque)], keep_unknown: true };

/// `args` of a network configuration: `args.cni.ips`.
pub static ARGS: Fields = Fields { fields: &[("cni", Shape::Struct(&ARGS_CNI))], keep_unknown: true };

/// `args.cni`.
pub static ARGS_CNI: Fields = Fields { fields: &[("ips", Shape::Opaque)], keep_unknown: true };
