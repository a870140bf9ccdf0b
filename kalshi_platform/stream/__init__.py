"""The plant's one sequenced event stream and the consumers that read it at their own pace."""
