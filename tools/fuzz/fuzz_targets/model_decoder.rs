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
    }
});
