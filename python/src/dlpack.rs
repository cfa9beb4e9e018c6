//! DLPack, the exchange format of array libraries: a PyTorch CUDA tensor comes in as a
//! capsule holding a `DLManagedTensor` and is read where it lies on the device; a result on
//! the device goes out the same way, for `torch.from_dlpack`. The structures follow the
//! DLPack header (version 0.8 layout, the unversioned capsule named `dltensor`).

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;
use std::ffi::{c_void, CStr};
use tl_backend::cuda::foreign::{self, Lease};
use tl_backend::{DType, Tensor};

const CAPSULE: &CStr = c"dltensor";
const USED: &CStr = c"used_dltensor";
/// `kDLCUDA`.
const CUDA: i32 = 2;
/// `kDLFloat`, `kDLBfloat`.
const FLOAT: u8 = 2;
const BFLOAT: u8 = 4;

#[repr(C)]
struct Device {
    device_type: i32,
    device_id: i32,
}

#[repr(C)]
struct DataType {
    code: u8,
    bits: u8,
    lanes: u16,
}

#[repr(C)]
struct DlTensor {
    data: *mut c_void,
    device: Device,
    ndim: i32,
    dtype: DataType,
    shape: *mut i64,
    strides: *mut i64,
    byte_offset: u64,
}

#[repr(C)]
struct Managed {
    dl_tensor: DlTensor,
    manager_ctx: *mut c_void,
    deleter: Option<unsafe extern "C" fn(*mut Managed)>,
}

/// A consumed capsule's tensor: its producer's deleter runs when this is dropped.
struct Consumed(*mut Managed);

// SAFETY: the producer's memory is only read through the device address, and its deleter may
// run on any thread (the DLPack contract for a consumed tensor).
unsafe impl Send for Consumed {}
unsafe impl Sync for Consumed {}

impl Drop for Consumed {
    fn drop(&mut self) {
        // SAFETY: `self.0` came from a capsule this process consumed, and is released once.
        unsafe {
            if let Some(deleter) = (*self.0).deleter {
                deleter(self.0);
            }
        }
    }
}

/// The tensor in a DLPack capsule of a CUDA array on device 0 (float32, float64, float16 or
/// bfloat16, row-major), taking the capsule over: the tensor keeps the producer's memory alive.
pub fn consume(capsule: &Bound<'_, PyAny>) -> PyResult<Tensor> {
    let raw = capsule.as_ptr();
    // SAFETY: `raw` is a live object; a capsule of another name is refused by the call.
    let managed = unsafe { ffi::PyCapsule_GetPointer(raw, CAPSULE.as_ptr()) } as *mut Managed;
    if managed.is_null() {
        return Err(PyErr::take(capsule.py()).unwrap_or_else(|| {
            PyTypeError::new_err("expected an unused DLPack capsule (`x.__dlpack__()`)")
        }));
    }
    // SAFETY: a `dltensor` capsule holds a `DLManagedTensor` its producer keeps valid until
    // the deleter runs.
    let t = unsafe { &(*managed).dl_tensor };
    let shape: Vec<usize> = if t.ndim <= 0 {
        Vec::new()
    } else {
        // SAFETY: `shape` holds `ndim` extents.
        unsafe { std::slice::from_raw_parts(t.shape, t.ndim as usize) }
            .iter()
            .map(|&e| usize::try_from(e))
            .collect::<Result<_, _>>()
            .map_err(|_| PyValueError::new_err("a DLPack tensor with a negative extent"))?
    };
    if t.device.device_type != CUDA || t.device.device_id != 0 {
        return Err(PyValueError::new_err(format!(
            "a DLPack tensor on device type {} number {} is not on cuda:0, where the program runs",
            t.device.device_type, t.device.device_id
        )));
    }
    let dtype = match (t.dtype.code, t.dtype.bits, t.dtype.lanes) {
        (FLOAT, 32, 1) => DType::F32,
        (FLOAT, 64, 1) => DType::F64,
        (FLOAT, 16, 1) => DType::F16,
        (BFLOAT, 16, 1) => DType::BF16,
        (code, bits, lanes) => {
            let what = format!("code {code}, {bits} bits, {lanes} lanes");
            return Err(PyTypeError::new_err(format!(
                "the DLPack element type ({what}) is not a float TL reads"
            )));
        }
    };
    if !t.strides.is_null() {
        // SAFETY: `strides` holds `ndim` strides when not null.
        let strides = unsafe { std::slice::from_raw_parts(t.strides, shape.len()) };
        let mut want = 1i64;
        for (k, &e) in shape.iter().enumerate().rev() {
            if e > 1 && strides[k] != want {
                return Err(PyValueError::new_err(
                    "the DLPack tensor is not row-major: pass `x.contiguous()`",
                ));
            }
            want = want.saturating_mul(e as i64);
        }
    }
    let ptr = t.data as u64 + t.byte_offset;
    // SAFETY: the capsule is renamed so that no one else consumes it or runs its deleter;
    // from here `Consumed` owns the tensor.
    unsafe { ffi::PyCapsule_SetName(raw, USED.as_ptr()) };
    let owner = Consumed(managed);
    // SAFETY: the producer keeps `ptr` valid until its deleter runs, which `owner` does last;
    // the caller synchronised the producer's stream before handing the capsule over.
    unsafe { foreign::borrowed(ptr, &shape, dtype, Box::new(owner)) }
        .map_err(|e| PyValueError::new_err(e.to_string()))
}

/// What an exported tensor's `manager_ctx` holds: the lease and the shape it points to.
struct Export {
    _lease: Lease,
    shape: Vec<i64>,
}

unsafe extern "C" fn delete_export(m: *mut Managed) {
    // SAFETY: `m` and its context were boxed by `export` and are released once, here.
    unsafe {
        let m = Box::from_raw(m);
        drop(Box::from_raw(m.manager_ctx as *mut Export));
    }
}

unsafe extern "C" fn capsule_destructor(capsule: *mut ffi::PyObject) {
    // SAFETY: called by Python with the dying capsule; an unconsumed one still owns its tensor.
    unsafe {
        if ffi::PyCapsule_IsValid(capsule, CAPSULE.as_ptr()) == 1 {
            let m = ffi::PyCapsule_GetPointer(capsule, CAPSULE.as_ptr()) as *mut Managed;
            if !m.is_null() {
                delete_export(m);
            }
        } else {
            ffi::PyErr_Clear();
        }
    }
}

/// A DLPack capsule of a row-major tensor in CUDA memory, for `torch.from_dlpack`; `None`
/// for a tensor elsewhere. The memory stays the program's until the consumer releases it.
pub fn export<'py>(py: Python<'py>, t: &Tensor) -> PyResult<Option<Bound<'py, PyAny>>> {
    let Some(lease) = Lease::of(t) else {
        return Ok(None);
    };
    let (code, bits) = match t.dtype {
        DType::F32 => (FLOAT, 32),
        DType::F64 => (FLOAT, 64),
        DType::F16 => (FLOAT, 16),
        DType::BF16 => (BFLOAT, 16),
        _ => return Ok(None),
    };
    let ptr = lease.ptr;
    let mut ctx = Box::new(Export {
        _lease: lease,
        shape: t.shape().iter().map(|&e| e as i64).collect(),
    });
    let managed = Box::new(Managed {
        dl_tensor: DlTensor {
            data: ptr as *mut c_void,
            device: Device {
                device_type: CUDA,
                device_id: 0,
            },
            ndim: ctx.shape.len() as i32,
            dtype: DataType {
                code,
                bits,
                lanes: 1,
            },
            shape: ctx.shape.as_mut_ptr(),
            strides: std::ptr::null_mut(),
            byte_offset: 0,
        },
        manager_ctx: Box::into_raw(ctx) as *mut c_void,
        deleter: Some(delete_export),
    });
    let raw = Box::into_raw(managed);
    // SAFETY: the capsule owns `raw` until a consumer renames it and takes it over.
    let capsule = unsafe {
        ffi::PyCapsule_New(
            raw as *mut c_void,
            CAPSULE.as_ptr(),
            Some(capsule_destructor),
        )
    };
    if capsule.is_null() {
        // SAFETY: the capsule was not made, so `raw` is still ours.
        unsafe { delete_export(raw) };
        return Err(PyErr::fetch(py));
    }
    // SAFETY: `capsule` is a new reference.
    Ok(Some(unsafe { Bound::from_owned_ptr(py, capsule) }))
}
