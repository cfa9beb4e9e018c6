//! A binary relation a device derived and holds as bits (see `device_rules`), its tuples
//! copied to the host the first time something needs them.

use std::sync::OnceLock;
use tl_backend::paths::DeviceBits;
use tl_backend::Backend;
use tl_relation::Relation;

/// A relation a device derived, held there as bits; its tuples are copied to the host the
/// first time something needs them.
#[derive(Debug)]
pub struct DeviceRelation {
    /// The bits on the device.
    pub bits: DeviceBits,
    host: OnceLock<Relation>,
}

impl DeviceRelation {
    /// Wraps a device result.
    pub fn new(bits: DeviceBits) -> Self {
        DeviceRelation {
            bits,
            host: OnceLock::new(),
        }
    }

    /// The tuples, copied from the device on first use.
    pub fn relation(&self, backend: &dyn Backend) -> Result<Relation, tl_backend::BackendError> {
        if let Some(r) = self.host.get() {
            return Ok(r.clone());
        }
        let device = backend.paths().ok_or_else(|| {
            tl_backend::BackendError::Device("a device relation on a backend without one".into())
        })?;
        let rel = Relation::from_flat(2, device.pairs(&self.bits)?);
        Ok(self.host.get_or_init(|| rel).clone())
    }
}
