//! The table of served kinds. Every resource the server serves is one [`ResourceKind`] row; the
//! generic handlers, discovery, OpenAPI, validation and tables all read from it.

use serde_json::Value;

/// How a printer column's cell is computed from an object.
pub type CellFn = fn(&Value) -> Value;

/// One column of `kubectl get` output (a `meta.k8s.io/v1` Table column).
#[derive(Clone, Debug)]
pub struct PrinterColumn {
    /// Column header, e.g. `Phase`.
    pub name: &'static str,
    /// Cell type: `string`, `integer`, `number`, `boolean` or `date`.
    pub type_: &'static str,
    /// Format hint (`name` for the Name column, else usually empty).
    pub format: &'static str,
    /// Column description (kubectl shows it nowhere, but it is part of the contract).
    pub description: &'static str,
    /// 0 = always shown; >0 = only with `-o wide`.
    pub priority: i32,
    /// Computes the cell from the whole object; `Value::Null` prints as `<none>`.
    /// `date` cells return the RFC 3339 timestamp string; the table code renders it as an age.
    pub cell: CellFn,
}

/// One served kind: everything the generic handlers need to know about it.
#[derive(Clone, Debug)]
pub struct ResourceKind {
    /// API group; empty for the core group (`v1` Secrets, Namespaces, Events).
    pub group: &'static str,
    /// API version, e.g. `v1alpha1`.
    pub version: &'static str,
    /// Kind, e.g. `Order`.
    pub kind: &'static str,
    /// List kind, e.g. `OrderList`.
    pub list_kind: &'static str,
    /// Plural resource name used in URLs, e.g. `orders`.
    pub plural: &'static str,
    /// Singular name, e.g. `order`.
    pub singular: &'static str,
    /// Whether objects live in namespaces.
    pub namespaced: bool,
    /// Short names for kubectl, e.g. `ord`.
    pub short_names: &'static [&'static str],
    /// Categories for kubectl, e.g. `arc`.
    pub categories: &'static [&'static str],
    /// Whether the kind has a `/status` subresource (then the main endpoint ignores `status`).
    pub has_status: bool,
    /// The OpenAPI v3 schema of the whole object (`openAPIV3Schema` as a CRD would carry it),
    /// without `metadata` details: `apiVersion`, `kind`, `metadata` (type object), `spec`, `status`.
    pub schema: Value,
    /// Printer columns after `Name` (and before `Age`, which every kind gets last).
    pub columns: Vec<PrinterColumn>,
    /// Description of the kind, shown by `kubectl explain`.
    pub description: &'static str,
}

impl ResourceKind {
    /// `group/version`, or just `version` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `plural.group` (or just `plural` for the core group), as used in error messages:
    /// `orders.arc.opendefense.cloud "o1" not found`.
    pub fn qualified_resource(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// `Kind.group` (or just `Kind`), as used in `Invalid` messages.
    pub fn qualified_kind(&self) -> String {
        if self.group.is_empty() {
            self.kind.to_string()
        } else {
            format!("{}.{}", self.kind, self.group)
        }
    }
}
