package dev.edgesr.core;

/** A model sidecar that is not edge_sr model metadata; the message says why and what to do. */
public final class InvalidMetadataException extends IllegalArgumentException {
    private static final long serialVersionUID = 1L;

    public InvalidMetadataException(String message) {
        super(message);
    }
}
