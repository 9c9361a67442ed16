package dev.edgesr.core;

/** Text that is not valid JSON; the message says what and where. */
public final class JsonException extends IllegalArgumentException {
    private static final long serialVersionUID = 1L;

    public JsonException(String message) {
        super(message);
    }
}
