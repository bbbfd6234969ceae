//! Generates the KurrentDB protocol's gRPC server stubs from the `.proto` files in `protos/`.
//!
//! protoc comes from the `protoc-bin-vendored` crate, so building needs nothing installed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    let include = protoc_bin_vendored::include_path()?;
    // Point prost-build at the vendored protoc through its configuration rather than the
    // PROTOC environment variable, which a build script cannot set without `unsafe`.
    let mut config = prost_build::Config::new();
    config.protoc_executable(protoc);
    println!("cargo:rerun-if-changed=protos");
    tonic_build::configure()
        .build_client(false)
        .build_server(true)
        // The protocol's own empty message carries nothing; as `()` it matches like prost's
        // `google.protobuf.Empty`.
        .extern_path(".event_store.client.Empty", "()")
        // Payloads and stream names stay `Bytes`, so serving them copies nothing.
        .bytes([
            ".event_store.client.StreamIdentifier.stream_name",
            ".event_store.client.streams.AppendReq.ProposedMessage.custom_metadata",
            ".event_store.client.streams.AppendReq.ProposedMessage.data",
            ".event_store.client.streams.BatchAppendReq.ProposedMessage.custom_metadata",
            ".event_store.client.streams.BatchAppendReq.ProposedMessage.data",
            ".event_store.client.streams.ReadResp.ReadEvent.RecordedEvent.custom_metadata",
            ".event_store.client.streams.ReadResp.ReadEvent.RecordedEvent.data",
        ])
        .compile_protos_with_config(
            config,
            &[
                "protos/shared.proto",
                "protos/streams.proto",
                "protos/serverfeatures.proto",
                // Only for the read-only listings clients call routinely (empty answers).
                "protos/persistent.proto",
                "protos/projections.proto",
            ],
            &[std::path::Path::new("protos"), include.as_path()],
        )?;
    Ok(())
}
