package walink

// ResetResumeDisabled clears the process-wide "IK disabled" flag, so that
// tests after one that failed a resume on purpose start as a new process
// would.
func ResetResumeDisabled() { ikDisabled.Store(false) }
