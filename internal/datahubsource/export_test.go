package datahubsource

// SetBeforeSaveHook makes the next commits run f between publishing and
// moving the cursor; nil removes it.
func SetBeforeSaveHook(f func() error) { testHookBeforeSave = f }
