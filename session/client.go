package session

import (
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/redis/go-redis/v9"
)

// Default client timeouts. A forward-auth answer is on every request's path,
// so a slow Redis must fail fast (the resolver answers 503) rather than hold
// requests.
const (
	DefaultDialTimeout  = 2 * time.Second
	DefaultReadTimeout  = time.Second
	DefaultWriteTimeout = time.Second
)

// RedisConfig says how to reach Redis. cmd/authresolver fills it from
// AUTHRESOLVER_REDIS_URL, AUTHRESOLVER_REDIS_ADDRS and
// AUTHRESOLVER_REDIS_MASTER_NAME.
//
//   - URL only: a standalone server, as in redis://user:pass@host:6379/0 or
//     rediss://… for TLS. go-redis URL query options (dial_timeout=3s,
//     pool_size=20, …) are honoured.
//   - Addrs and MasterName: Sentinel; Addrs are the sentinels, MasterName
//     the monitored master.
//   - Addrs without MasterName: Redis Cluster; Addrs are seed nodes (one is
//     enough).
//
// With Addrs, URL is optional and only supplies credentials, TLS (rediss),
// database (Sentinel only; Cluster has database 0) and options; its host is
// ignored.
type RedisConfig struct {
	URL        string
	Addrs      []string
	MasterName string
	// Timeouts; zero means the URL's value, else the defaults above.
	DialTimeout  time.Duration
	ReadTimeout  time.Duration
	WriteTimeout time.Duration
}

// UniversalOptions returns go-redis options for c, with
// ContextTimeoutEnabled set so that request deadlines bound Redis calls. Its
// errors never contain the URL (it may hold a password).
func (c RedisConfig) UniversalOptions() (*redis.UniversalOptions, error) {
	if c.URL == "" && len(c.Addrs) == 0 {
		return nil, errors.New("session: redis: neither URL nor addresses given")
	}
	if c.MasterName != "" && len(c.Addrs) == 0 {
		return nil, errors.New("session: redis: a Sentinel master name needs the sentinel addresses")
	}
	o := &redis.UniversalOptions{
		Addrs:                 c.Addrs,
		MasterName:            c.MasterName,
		IsClusterMode:         len(c.Addrs) > 0 && c.MasterName == "",
		ContextTimeoutEnabled: true,
	}
	if c.URL != "" {
		u, err := redis.ParseURL(c.URL)
		if err != nil {
			var ue *url.Error
			if errors.As(err, &ue) {
				err = ue.Err // url.Error quotes the URL
			}
			return nil, fmt.Errorf("session: redis URL: %w", err)
		}
		if len(c.Addrs) == 0 {
			o.Addrs = []string{u.Addr}
		}
		o.Username, o.Password, o.DB = u.Username, u.Password, u.DB
		o.TLSConfig = u.TLSConfig
		o.ClientName, o.Protocol = u.ClientName, u.Protocol
		o.DialTimeout, o.ReadTimeout, o.WriteTimeout = u.DialTimeout, u.ReadTimeout, u.WriteTimeout
		o.MaxRetries, o.MinRetryBackoff, o.MaxRetryBackoff = u.MaxRetries, u.MinRetryBackoff, u.MaxRetryBackoff
		o.PoolSize, o.PoolTimeout, o.MinIdleConns, o.MaxIdleConns = u.PoolSize, u.PoolTimeout, u.MinIdleConns, u.MaxIdleConns
		o.MaxActiveConns, o.ConnMaxIdleTime, o.ConnMaxLifetime = u.MaxActiveConns, u.ConnMaxIdleTime, u.ConnMaxLifetime
	}
	if o.IsClusterMode && o.DB != 0 {
		return nil, errors.New("session: redis: Redis Cluster has only database 0")
	}
	if o.DialerRetries == 0 {
		// go-redis retries a refused dial 5 times 100 ms apart, per
		// command attempt: with Redis down a request would wait seconds
		// for its 503. Command retries (MaxRetries) still ride out a
		// broken pooled connection.
		o.DialerRetries = 1
	}
	o.DialTimeout = pick(c.DialTimeout, o.DialTimeout, DefaultDialTimeout)
	o.ReadTimeout = pick(c.ReadTimeout, o.ReadTimeout, DefaultReadTimeout)
	o.WriteTimeout = pick(c.WriteTimeout, o.WriteTimeout, DefaultWriteTimeout)
	return o, nil
}

func pick(explicit, fromURL, def time.Duration) time.Duration {
	switch {
	case explicit != 0:
		return explicit
	case fromURL != 0:
		return fromURL
	}
	return def
}

// NewRedisClient returns a standalone, Sentinel or Cluster client for c (see
// RedisConfig). It does not connect; the first command does.
func NewRedisClient(c RedisConfig) (redis.UniversalClient, error) {
	o, err := c.UniversalOptions()
	if err != nil {
		return nil, err
	}
	return redis.NewUniversalClient(o), nil
}
