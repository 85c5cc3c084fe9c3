//! `lsgm_pool` and `lsgm_layer_info` for every pooling kind, through the C
//! ABI: the demo model re-encoded with its layers' poolings changed to NHWC,
//! vector and given features (the demo network's taps are all NCHW, which
//! the C tests in `run.sh` cover). Means are checked against sums written out here.

use lsgm::model::wire::Pooling;
use lsgm::{Model, ModelSpec};
use lsgm_c::handle::{lsgm_layer_grid, lsgm_layer_info, lsgm_model_open};
use lsgm_c::score::lsgm_pool;
use lsgm_c::{LsgmLayerInfo, LsgmModel, LsgmPooling, LsgmStatus};
use std::mem::MaybeUninit;

fn model_with(poolings: [Pooling; 3]) -> Vec<u8> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../models/fmnist-resnet.lsgm");
    let bytes = std::fs::read(path).expect("the demo model");
    let mut spec = ModelSpec::from_model(&Model::from_bytes(&bytes).expect("valid"));
    for (layer, p) in spec.layers.iter_mut().zip(poolings) {
        layer.pooling = p;
    }
    spec.encode().expect("encodes")
}

fn open(bytes: &[u8]) -> Box<LsgmModel> {
    let mut storage: Box<MaybeUninit<LsgmModel>> = Box::new(MaybeUninit::zeroed());
    let s = unsafe {
        lsgm_model_open(
            storage.as_mut_ptr(),
            size_of::<LsgmModel>(),
            bytes.as_ptr(),
            bytes.len(),
        )
    };
    assert_eq!(s, LsgmStatus::LsgmOk);
    unsafe { Box::from_raw(Box::into_raw(storage).cast()) }
}

fn info(model: &LsgmModel, layer: usize) -> LsgmLayerInfo {
    let mut out = MaybeUninit::<LsgmLayerInfo>::uninit();
    assert_eq!(
        unsafe { lsgm_layer_info(model, layer, out.as_mut_ptr()) },
        LsgmStatus::LsgmOk
    );
    unsafe { out.assume_init() }
}

fn pool(
    model: &LsgmModel,
    layer: usize,
    tensor: &[f32],
    shape: &[usize],
    item: usize,
    row: &mut [f32],
) -> LsgmStatus {
    unsafe {
        lsgm_pool(
            model,
            layer,
            tensor.as_ptr(),
            tensor.len(),
            shape.as_ptr(),
            shape.len(),
            item,
            row.as_mut_ptr(),
            row.len(),
        )
    }
}

#[test]
fn every_pooling_kind_through_the_c_abi() {
    let bytes = model_with([Pooling::GlobalAverageNhwc, Pooling::Vector, Pooling::Precomputed]);
    let model = open(&bytes);
    let kinds: Vec<_> = (0..3).map(|l| info(&model, l).pooling).collect();
    assert_eq!(
        kinds,
        [
            LsgmPooling::LsgmPoolingMeanNhwc,
            LsgmPooling::LsgmPoolingVector,
            LsgmPooling::LsgmPoolingPrecomputed
        ]
    );
    let (c0, c1, c2) = (
        info(&model, 0).dim_in,
        info(&model, 1).dim_in,
        info(&model, 2).dim_in,
    );

    // NHWC, batch of 2, 3×2 pixels: value = 1000 n + 10 p + c; item 1's mean of channel c is 1000 + 25 + c.
    let (h, w) = (3, 2);
    let mut nhwc = vec![0.0f32; 2 * h * w * c0];
    for n in 0..2 {
        for p in 0..h * w {
            for c in 0..c0 {
                nhwc[(n * h * w + p) * c0 + c] = (1000 * n + 10 * p + c) as f32;
            }
        }
    }
    let mut row = vec![-1.0f32; c0 + 1];
    assert_eq!(
        pool(&model, 0, &nhwc, &[2, h, w, c0], 1, &mut row),
        LsgmStatus::LsgmOk
    );
    for (c, v) in row[..c0].iter().enumerate() {
        assert_eq!(*v, (1000 + 25 + c) as f32, "channel {c}");
    }
    assert_eq!(row[c0], -1.0, "written past dim_in");
    // The NCHW reading of the same tensor has the wrong channel count for this layer.
    assert_eq!(
        pool(&model, 0, &nhwc, &[2, c0, h, w], 1, &mut row),
        LsgmStatus::LsgmShape
    );

    // Vector: item 2 of a 3×C batch, copied as it is.
    let batch: Vec<f32> = (0..3 * c1).map(|i| i as f32 * 0.5).collect();
    let mut row = vec![-1.0f32; c1];
    assert_eq!(pool(&model, 1, &batch, &[3, c1], 2, &mut row), LsgmStatus::LsgmOk);
    assert_eq!(row, batch[2 * c1..]);
    assert_eq!(
        pool(&model, 1, &batch, &[3, c1], 3, &mut row),
        LsgmStatus::LsgmShape
    );

    // Given features: nothing to pool, and the row stays as it was.
    let mut row = vec![-1.0f32; c2];
    let tensor = vec![0.0f32; c2];
    assert_eq!(
        pool(&model, 2, &tensor, &[1, c2], 0, &mut row),
        LsgmStatus::LsgmPoolingUnsupported
    );
    assert!(row.iter().all(|&v| v == -1.0));
}

#[test]
fn grid_poolings_through_the_c_abi() {
    let grid = |side| {
        [
            Pooling::GridAverageNchw { side },
            Pooling::GridAverageNhwc { side },
        ]
    };
    let [nchw, nhwc] = grid(2);
    let bytes = model_with([nchw, nhwc, Pooling::GlobalAverageNchw]);
    let model = open(&bytes);
    let (l0, l1) = (info(&model, 0), info(&model, 1));
    assert_eq!(l0.pooling, LsgmPooling::LsgmPoolingGridNchw);
    assert_eq!(l1.pooling, LsgmPooling::LsgmPoolingGridNhwc);
    let grid = |layer| {
        let mut side = 0usize;
        let status = unsafe { lsgm_layer_grid(&*model, layer, &mut side) };
        (status, side)
    };
    assert_eq!(grid(0), (LsgmStatus::LsgmOk, 2));
    assert_eq!(grid(1), (LsgmStatus::LsgmOk, 2));
    assert_eq!(grid(2), (LsgmStatus::LsgmOk, 1));
    assert_eq!(grid(3).0, LsgmStatus::LsgmLayerIndex);
    assert_eq!(
        unsafe { lsgm_layer_grid(&*model, 0, std::ptr::null_mut()) },
        LsgmStatus::LsgmNullPointer
    );
    // The demo's 16 features of layer 0 are 2×2 cells of 4 channels. A 3×3
    // map splits into rows {0, 1}, {2} and columns {0, 1}, {2}; value =
    // 100 c + 3 y + x, so a cell's mean is 100 c + 3 ȳ + x̄.
    let c = l0.dim_in / 4;
    let map: Vec<f32> = (0..c * 9).map(|i| (100 * (i / 9) + i % 9) as f32).collect();
    let mut row = vec![-1.0f32; l0.dim_in + 1];
    assert_eq!(
        pool(&model, 0, &map, &[1, c, 3, 3], 0, &mut row),
        LsgmStatus::LsgmOk
    );
    let centre = [(0.5, 0.5), (0.5, 2.0), (2.0, 0.5), (2.0, 2.0)];
    for (cell, (y, x)) in centre.iter().enumerate() {
        for ch in 0..c {
            let want = 100.0 * ch as f32 + 3.0 * y + x;
            assert_eq!(row[cell * c + ch], want, "cell {cell} channel {ch}");
        }
    }
    assert_eq!(row[l0.dim_in], -1.0, "written past dim_in");
    // A map with one row cannot fill two rows of cells.
    assert_eq!(
        pool(&model, 0, &map[..3 * c], &[1, c, 1, 3], 0, &mut row),
        LsgmStatus::LsgmShape
    );
}
