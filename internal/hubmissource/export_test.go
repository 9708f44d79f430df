package hubmissource

// SetBeforePublishHook makes the next cycles run f between committing their
// snapshot and publishing its messages; nil removes it.
func SetBeforePublishHook(f func() error) { testHookBeforePublish = f }
