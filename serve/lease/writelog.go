package lease

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"
)

// ErrWriteLog is matched by the error of CheckWriteLog when the write log
// shows a session written by two holders at once.
var ErrWriteLog = errors.New("lease: write log shows two owners of one session")

// CheckWriteLog audits serve_write_log (written with Config.WriteLog): it
// fails with ErrWriteLog when one session's epoch was written by two
// owners, or a write of an older epoch was logged after one of a newer
// epoch (the fence serializes writes with takeovers, so the log ids of
// epoch e all precede those of e+1). It returns how many writes were
// checked. Meant for tests and audits.
func CheckWriteLog(ctx context.Context, pool *pgxpool.Pool) (int, error) {
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM serve_write_log`).Scan(&n); err != nil {
		return 0, fmt.Errorf("lease: write log: %w", err)
	}
	rows, err := pool.Query(ctx, `
		SELECT session_id, epoch, 'epoch written by ' || string_agg(DISTINCT owner, ', ')
			FROM serve_write_log GROUP BY session_id, epoch HAVING count(DISTINCT owner) > 1
		UNION ALL
		SELECT session_id, epoch, 'write of epoch ' || epoch || ' by ' || owner || ' (' || what || ') after epoch ' || prev
			FROM (SELECT session_id, epoch, owner, what,
				max(epoch) OVER (PARTITION BY session_id ORDER BY id ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prev
				FROM serve_write_log) x
			WHERE epoch < prev
		LIMIT 20`)
	if err != nil {
		return 0, fmt.Errorf("lease: write log: %w", err)
	}
	defer rows.Close()
	var bad []string
	for rows.Next() {
		var id, what string
		var epoch int64
		if err := rows.Scan(&id, &epoch, &what); err != nil {
			return 0, fmt.Errorf("lease: write log: %w", err)
		}
		bad = append(bad, fmt.Sprintf("%s epoch %d: %s", id, epoch, what))
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("lease: write log: %w", err)
	}
	if len(bad) > 0 {
		return n, fmt.Errorf("%w: %s", ErrWriteLog, strings.Join(bad, "; "))
	}
	return n, nil
}
