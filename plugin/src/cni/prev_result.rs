//! Reading `prevResult` (CHECK): the addresses of a result of any supported version. Both shapes
//! carry `ips[].address`; `version` (0.x) and `interface` (set by the interface plugin) are
//! ignored.

use ipam::{FieldError, FieldProblem};
use ipnet::IpNet;
use serde_json::Value;

/// The addresses listed in `prevResult.ips`, in order. Errors name the bad field.
pub fn addresses(prev: &Value) -> Result<Vec<IpNet>, FieldError> {
    let Value::Object(map) = prev else {
        return Err(FieldError::new(
            "prevResult",
            prev.to_string(),
            FieldProblem::WrongType("expected an object".into()),
        ));
    };
    let ips = match map.get("ips") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(ips)) => ips,
        Some(other) => {
            let problem = FieldProblem::WrongType("expected a list".into());
            return Err(FieldError::new("prevResult.ips", other.to_string(), problem));
        }
    };
    let mut out = Vec::with_capacity(ips.len());
    for (i, ip) in ips.iter().enumerate() {
        let field = format!("prevResult.ips[{i}].address");
        let Some(address) = ip.get("address").and_then(Value::as_str) else {
            return Err(FieldError::new(field, ip.to_string(), FieldProblem::Missing));
        };
        let net = address.parse::<IpNet>().map_err(|_| FieldError::new(field, address, FieldProblem::InvalidCidr))?;
        out.push(net);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_both_shapes() {
        let old = json!({"cniVersion": "0.4.0", "ips": [{"version": "4", "address": "10.0.0.2/24", "interface": 1}]});
        let new = json!({"cniVersion": "1.0.0", "interfaces": [], "ips": [{"address": "fd00::2/64"}]});
        assert_eq!(addresses(&old).unwrap(), vec!["10.0.0.2/24".parse::<IpNet>().unwrap()]);
        assert_eq!(addresses(&new).unwrap(), vec!["fd00::2/64".parse::<IpNet>().unwrap()]);
        assert_eq!(addresses(&json!({"cniVersion": "1.0.0"})).unwrap(), vec![]);
    }

    #[test]
    fn errors_name_the_field() {
        let e = addresses(&json!({"ips": [{"address": "10.0.0.2/24"}, {"address": "nope"}]})).unwrap_err();
        assert_eq!(e.field, "prevResult.ips[1].address");
        assert_eq!(addresses(&json!({"ips": [{}]})).unwrap_err().field, "prevResult.ips[0].address");
        assert_eq!(addresses(&json!([])).unwrap_err().field, "prevResult");
        assert_eq!(addresses(&json!({"ips": 3})).unwrap_err().field, "prevResult.ips");
    }
}
