//! Any byte string fed to the model decoder gives a model or a typed error;
//! a model that decodes scores any finite input without panicking.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Half the inputs get a valid header and CRC so the fuzzer reaches the
    // postcard body and the validator instead of stopping at the checksum.
    let mut signed = Vec::new();
    let bytes = if data.first().is_some_and(|b| b & 1 == 1) {
        let body = &data[1..];
        let header = lsgm::model::header(lsgm::model::FORMAT_VERSION, body).expect("fuzz inputs are small");
        signed.extend_from_slice(&header);
        signed.extend_from_slice(body);
        &signed[..]
    } else {
        data
    };
    let decoded = lsgm::Model::from_bytes(bytes);
    if let Ok(model) = decoded {
        let mut scratch = vec![0.0f32; model.scratch_len()];
        let mut contributions = vec![0.0f32; model.num_layers()];
        let features: Vec<Vec<f32>> = model.layers().iter().map(|l| vec![0.25; l.dim_in()]).collect();
        let refs: Vec<&[f32]> = features.iter().map(Vec::as_slice).collect();
        if let Ok(s) = model.score(&refs, &mut scratch, &mut contributions) {
            assert!(s.is_finite());
        }
        // Each layer's pooling (a grid side from the file) on a 3×5 map:
        // features of the layer's width, or `Error::Shape`, never a panic.
        for l in model.layers() {
            let cells = l.pooling().side() * l.pooling().side();
            let c = l.dim_in() / cells.max(1);
            let map = vec![0.5f32; c * 15];
            let mut row = vec![0.0f32; l.dim_in()];
            for shape in [[1, c, 3, 5], [1, 3, 5, c]] {
                let _ = lsgm::pool::tensor(l.pooling(), &shape, &map, 0, &mut row);
            }
        }
    }
});
