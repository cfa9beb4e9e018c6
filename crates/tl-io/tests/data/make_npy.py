"""Generates the small .npy fixtures read by crates/tl-io/tests/numpy_files.rs.

Run from this folder: python3 make_npy.py  (needs numpy).
"""
import numpy as np

np.save("f32_2x3.npy", np.arange(6, dtype="<f4").reshape(2, 3) / 4)
np.save("f64_fortran_2x3x4.npy", np.asfortranarray(np.arange(24, dtype="<f8").reshape(2, 3, 4)))
np.save("f16_5.npy", np.array([0.5, -1.0, 2.25, 65504.0, -0.0], dtype="<f2"))
np.save("i4_big_endian_3.npy", np.array([1, -2, 300000], dtype=">i4"))
np.save("u1_4.npy", np.array([0, 1, 128, 255], dtype="u1"))
np.save("i2_2x2.npy", np.array([[-32768, 1], [2, 32767]], dtype="<i2"))
np.save("bool_3.npy", np.array([True, False, True]))
np.save("scalar_f8.npy", np.array(3.5, dtype="<f8"))
np.save("empty_0x3_f4.npy", np.zeros((0, 3), dtype="<f4"))
np.save("i8_fortran_3x2.npy", np.asfortranarray(np.array([[1, 2], [3, 4], [5, 6]], dtype="<i8")))
