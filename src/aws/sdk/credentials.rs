//! The caller's credentials, resolved once before the first call so that
//! trailkey knows whose they are (`Credentials::account_id`) without asking
//! STS, then handed to the SDK's own identity cache.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider, future};

/// A credentials provider that serves, once, the credentials [`Caller::account`]
/// resolved, then asks the provider it wraps (the SDK's chain, a profile's
/// role, ...) as the SDK's identity cache needs: the SDK caches and renews
/// them as it would the wrapped provider's, and a source of credentials (an
/// SSO portal, STS for a profile's role) is not asked twice for the start
/// of a run. It is asked again when the copy could not be handed over: the
/// SDK resolved credentials first, they expire within [`FRESH_FOR`], or the
/// resolution outlasted [`RESOLVE_TIMEOUT`].
#[derive(Debug)]
struct Resolved {
    inner: SharedCredentialsProvider,
    first: Mutex<Option<Credentials>>,
    /// The SDK asked the wrapped provider itself: credentials resolved
    /// later are not handed to it (its cache holds fresher ones).
    sdk_asked: AtomicBool,
}

impl ProvideCredentials for Resolved {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        let first = self.first.lock().ok().and_then(|mut first| first.take());
        match first {
            Some(credentials) => future::ProvideCredentials::ready(Ok(credentials)),
            None => {
                self.sdk_asked.store(true, Ordering::SeqCst);
                self.inner.provide_credentials()
            }
        }
    }
}

/// How long resolving the credentials to learn their account may take;
/// past it the account is unknown, and the SDK resolves them on its own
/// (and reports a failure) at the first call.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(30);

/// Credentials expiring sooner than this are not handed over: the SDK
/// resolves fresh ones.
const FRESH_FOR: Duration = Duration::from_secs(300);

/// Whose the caller's credentials are.
#[derive(Debug, Clone)]
pub struct Caller {
    resolved: Arc<Resolved>,
    /// What the credentials said, once resolved (`None` inside: they do
    /// not name their account, or could not be resolved).
    named: Arc<tokio::sync::OnceCell<Option<String>>>,
    /// What a `GetCallerIdentity` answered with these credentials.
    answered: Arc<OnceLock<String>>,
}

impl Caller {
    /// Wraps `provider`; returns the provider to give the SDK in its place.
    pub fn wrap(provider: SharedCredentialsProvider) -> (Caller, SharedCredentialsProvider) {
        let resolved = Arc::new(Resolved {
            inner: provider,
            first: Mutex::new(None),
            sdk_asked: AtomicBool::new(false),
        });
        let shared = SharedCredentialsProvider::new(Shared(resolved.clone()));
        let caller = Caller {
            resolved,
            named: Arc::default(),
            answered: Arc::default(),
        };
        (caller, shared)
    }

    /// The credentials' account, resolving them the first time. A failure
    /// to resolve them, or a resolution slower than [`RESOLVE_TIMEOUT`], is
    /// `None` here: the first call reports it.
    pub async fn named(&self) -> Option<String> {
        self.named
            .get_or_init(|| async {
                let resolving = self.resolved.inner.provide_credentials();
                let credentials = tokio::time::timeout(RESOLVE_TIMEOUT, resolving)
                    .await
                    .ok()?
                    .ok()?;
                let account = credentials.account_id().map(|a| a.as_str().to_owned());
                let fresh = credentials
                    .expiry()
                    .is_none_or(|at| at > SystemTime::now() + FRESH_FOR);
                if fresh
                    && !self.resolved.sdk_asked.load(Ordering::SeqCst)
                    && let Ok(mut first) = self.resolved.first.lock()
                {
                    *first = Some(credentials);
                }
                account
            })
            .await
            .clone()
    }

    /// The account, named by the credentials or answered by STS.
    pub async fn account(&self) -> Option<String> {
        match self.named().await {
            Some(account) => Some(account),
            None => self.answered.get().cloned(),
        }
    }

    /// Records `GetCallerIdentity`'s answer for these credentials.
    pub fn answered(&self, account: &str) {
        let _ = self.answered.set(account.to_owned());
    }
}

/// A provider shared between the SDK and its owner ([`Resolved`] between
/// the SDK and [`Caller`]).
#[derive(Debug)]
struct Shared<P>(Arc<P>);

impl<P: ProvideCredentials> ProvideCredentials for Shared<P> {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        self.0.provide_credentials()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Credentials numbered by how often they were asked for, naming
    /// `account` if given, expiring after `lasts` if given.
    #[derive(Debug, Default)]
    struct Counting {
        asked: std::sync::atomic::AtomicUsize,
        account: Option<&'static str>,
        lasts: Option<Duration>,
    }

    impl Counting {
        fn of(account: &'static str) -> Arc<Counting> {
            Arc::new(Counting {
                account: Some(account),
                ..Counting::default()
            })
        }

        fn asked(&self) -> usize {
            self.asked.load(std::sync::atomic::Ordering::SeqCst)
        }
    }

    impl ProvideCredentials for Counting {
        fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
        where
            Self: 'a,
        {
            let n = self.asked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let mut builder = Credentials::builder()
                .access_key_id(format!("AKIA{n}"))
                .secret_access_key("secret")
                .provider_name("counting");
            if let Some(account) = self.account {
                builder = builder.account_id(account);
            }
            if let Some(lasts) = self.lasts {
                builder = builder.expiry(SystemTime::now() + lasts);
            }
            future::ProvideCredentials::ready(Ok(builder.build()))
        }
    }

    fn wrap(inner: &Arc<Counting>) -> (Caller, SharedCredentialsProvider) {
        Caller::wrap(SharedCredentialsProvider::new(Shared(inner.clone())))
    }

    #[tokio::test]
    async fn the_credentials_resolved_to_learn_the_account_are_the_ones_the_sdk_gets_first() {
        let inner = Counting::of("222222222222");
        let (caller, shared) = wrap(&inner);
        assert_eq!(caller.account().await.as_deref(), Some("222222222222"));
        assert_eq!(caller.account().await.as_deref(), Some("222222222222"));
        let first = shared.provide_credentials().await.unwrap();
        assert_eq!(first.access_key_id(), "AKIA0");
        assert_eq!(inner.asked(), 1);
        // Renewals go to the wrapped provider.
        let again = shared.provide_credentials().await.unwrap();
        assert_eq!(again.access_key_id(), "AKIA1");
    }

    #[tokio::test]
    async fn credentials_the_sdk_already_resolved_itself_are_not_replaced_by_older_ones() {
        let inner = Counting::of("222222222222");
        let (caller, shared) = wrap(&inner);
        let sdk = shared.provide_credentials().await.unwrap();
        assert_eq!(sdk.access_key_id(), "AKIA0");
        assert_eq!(caller.account().await.as_deref(), Some("222222222222"));
        // The next the SDK asks for comes from the provider, not the copy
        // resolved for the account.
        let renewed = shared.provide_credentials().await.unwrap();
        assert_eq!(renewed.access_key_id(), "AKIA2");
    }

    #[tokio::test]
    async fn credentials_about_to_expire_are_not_handed_to_the_sdk() {
        let inner = Arc::new(Counting {
            account: Some("222222222222"),
            lasts: Some(Duration::from_secs(60)),
            ..Counting::default()
        });
        let (caller, shared) = wrap(&inner);
        assert_eq!(caller.account().await.as_deref(), Some("222222222222"));
        let sdk = shared.provide_credentials().await.unwrap();
        assert_eq!(sdk.access_key_id(), "AKIA1");
    }

    #[tokio::test]
    async fn credentials_that_do_not_name_their_account_leave_it_to_sts() {
        let (caller, _) = wrap(&Arc::new(Counting::default()));
        assert_eq!(caller.account().await, None);
        caller.answered("111111111111");
        assert_eq!(caller.account().await.as_deref(), Some("111111111111"));
        assert_eq!(caller.named().await, None);
    }
}
