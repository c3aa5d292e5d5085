package waproto

//go:generate go run ./internal/gen
