//! CNI specification versions this plugin speaks, and how the version of an invocation is chosen
//! (SPEC.md "Version considerations": `cniVersion`, plus the `cniVersions` list).

use std::fmt;

/// A CNI specification version the plugin supports. Ordered: a later variant is a newer spec.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CniVersion {
    /// 0.1.0 (also what a configuration without `cniVersion` means): the `ip4`/`ip6` result.
    V0_1_0,
    /// 0.2.0: same result shape as 0.1.0.
    V0_2_0,
    /// 0.3.0: first version with the `ips`/`routes`/`dns` result (`"version"` per IP).
    V0_3_0,
    /// 0.3.1: same result shape as 0.3.0.
    V0_3_1,
    /// 0.4.0: adds CHECK and `prevResult` on DEL.
    V0_4_0,
    /// 1.0.0: drops `"version"` from each IP.
    V1_0_0,
    /// 1.1.0: adds GC, STATUS and `cniVersions`.
    V1_1_0,
}

/// The shape of a result: which module of [`crate::cni`] prints it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// 0.1.0, 0.2.0: [`crate::cni::v02`].
    V02,
    /// 0.3.0, 0.3.1, 0.4.0: [`crate::cni::v04`].
    V04,
    /// 1.0.0, 1.1.0: [`crate::cni::v1`].
    V1,
}

impl CniVersion {
    /// Every supported version, oldest first (what VERSION prints).
    pub const ALL: [CniVersion; 7] = [
        CniVersion::V0_1_0,
        CniVersion::V0_2_0,
        CniVersion::V0_3_0,
        CniVersion::V0_3_1,
        CniVersion::V0_4_0,
        CniVersion::V1_0_0,
        CniVersion::V1_1_0,
    ];
    /// The newest supported version.
    pub const LATEST: CniVersion = CniVersion::V1_1_0;

    /// Parses an exact version string (`"0.4.0"`); `None` for versions this plugin does not speak.
    pub fn parse(s: &str) -> Option<CniVersion> {
        CniVersion::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// The version as written in configurations and results.
    pub fn as_str(self) -> &'static str {
        match self {
            CniVersion::V0_1_0 => "0.1.0",
            CniVersion::V0_2_0 => "0.2.0",
            CniVersion::V0_3_0 => "0.3.0",
            CniVersion::V0_3_1 => "0.3.1",
            CniVersion::V0_4_0 => "0.4.0",
            CniVersion::V1_0_0 => "1.0.0",
            CniVersion::V1_1_0 => "1.1.0",
        }
    }

    /// The result shape of this version.
    pub fn shape(self) -> Shape {
        if self >= CniVersion::V1_0_0 {
            Shape::V1
        } else if self >= CniVersion::V0_3_0 {
            Shape::V04
        } else {
            Shape::V02
        }
    }

    /// The oldest version that allows `command` (CHECK: 0.4.0; GC, STATUS: 1.1.0), as libcni's
    /// `skel` enforces it.
    pub fn minimum_for(command: &str) -> Option<CniVersion> {
        match command {
            "CHECK" => Some(CniVersion::V0_4_0),
            "GC" | "STATUS" => Some(CniVersion::V1_1_0),
            _ => None,
        }
    }
}

impl fmt::Display for CniVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why no version could be chosen.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("config asks for {asked:?}, plugin supports {supported:?}")]
pub struct Incompatible {
    /// The versions the configuration offered (`cniVersion` then `cniVersions`).
    pub asked: Vec<String>,
    /// What this plugin supports.
    pub supported: Vec<&'static str>,
}

/// Chooses the version of an invocation: the newest supported one among `cniVersion` and the
/// `cniVersions` list. An empty or missing `cniVersion` means 0.1.0, as in libcni.
pub fn negotiate(cni_version: Option<&str>, cni_versions: &[String]) -> Result<CniVersion, Incompatible> {
    let mut asked: Vec<String> = Vec::new();
    match cni_version {
        Some(v) if !v.is_empty() => asked.push(v.to_string()),
        _ if cni_versions.is_empty() => asked.push("0.1.0".to_string()),
        _ => {}
    }
    asked.extend(cni_versions.iter().cloned());
    asked
        .iter()
        .filter_map(|v| CniVersion::parse(v))
        .max()
        .ok_or_else(|| Incompatible { asked, supported: CniVersion::ALL.iter().map(|v| v.as_str()).collect() })
}

/// The VERSION result (SPEC.md "VERSION Success").
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct VersionResult {
    /// The version given on input, or the newest when none was given.
    #[serde(rename = "cniVersion")]
    pub cni_version: String,
    /// Every version this plugin supports.
    #[serde(rename = "supportedVersions")]
    pub supported_versions: Vec<&'static str>,
}

impl VersionResult {
    /// The answer to VERSION for a request that named `asked` (if any).
    pub fn new(asked: Option<&str>) -> VersionResult {
        VersionResult {
            cni_version: asked.filter(|v| !v.is_empty()).unwrap_or(CniVersion::LATEST.as_str()).to_string(),
            supported_versions: CniVersion::ALL.iter().map(|v| v.as_str()).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_supported_version_and_nothing_else() {
        for v in CniVersion::ALL {
            assert_eq!(CniVersion::parse(v.as_str()), Some(v));
        }
        for bad in ["", "0.0.9", "1.2.0", "1.0", "v1.0.0"] {
            assert_eq!(CniVersion::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn shapes_split_at_1_0_0() {
        assert_eq!(CniVersion::V0_1_0.shape(), Shape::V02);
        assert_eq!(CniVersion::V0_2_0.shape(), Shape::V02);
        assert_eq!(CniVersion::V0_3_0.shape(), Shape::V04);
        assert_eq!(CniVersion::V0_4_0.shape(), Shape::V04);
        assert_eq!(CniVersion::V1_0_0.shape(), Shape::V1);
    }

    #[test]
    fn negotiation_takes_the_newest_supported() {
        assert_eq!(negotiate(Some("0.3.1"), &[]), Ok(CniVersion::V0_3_1));
        let list = vec!["0.4.0".to_string(), "1.1.0".to_string(), "9.9.9".to_string()];
        assert_eq!(negotiate(Some("0.3.0"), &list), Ok(CniVersion::V1_1_0));
        assert_eq!(negotiate(None, &list), Ok(CniVersion::V1_1_0));
        assert_eq!(negotiate(Some("0.2.0"), &[]), Ok(CniVersion::V0_2_0));
        let err = negotiate(Some("0.5.0"), &[]).unwrap_err();
        assert_eq!(err.asked, vec!["0.5.0"]);
        assert_eq!(negotiate(None, &[]), Ok(CniVersion::V0_1_0), "no cniVersion means 0.1.0");
        assert_eq!(negotiate(Some(""), &[]), Ok(CniVersion::V0_1_0));
    }

    #[test]
    fn minimum_versions_follow_skel() {
        assert_eq!(CniVersion::minimum_for("CHECK"), Some(CniVersion::V0_4_0));
        assert_eq!(CniVersion::minimum_for("GC"), Some(CniVersion::V1_1_0));
        assert_eq!(CniVersion::minimum_for("STATUS"), Some(CniVersion::V1_1_0));
        assert_eq!(CniVersion::minimum_for("ADD"), None);
    }

    #[test]
    fn version_result_echoes_the_input() {
        let r = VersionResult::new(Some("0.4.0"));
        assert_eq!(r.cni_version, "0.4.0");
        assert_eq!(r.supported_versions, vec!["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]);
        assert_eq!(VersionResult::new(None).cni_version, "1.1.0");
    }
}
