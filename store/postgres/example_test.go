package postgres_test

import (
	"context"
	"log"
	"log/slog"

	"github.com/walinkdev/walink/store/postgres"
)

func ExampleOpen() {
	ctx := context.Background()
	// search_path keeps walink's tables in a schema of their own.
	st, err := postgres.Open(ctx, "postgres://walink@db.internal/walink?sslmode=verify-full&search_path=walink",
		postgres.WithLogger(slog.Default()))
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	devs, err := st.Devices(ctx)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("%d devices", len(devs))
}
