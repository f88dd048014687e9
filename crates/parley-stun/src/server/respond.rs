//! Writing responses: success and error, with MESSAGE-INTEGRITY,
//! SOFTWARE and FINGERPRINT as each calls for.

use super::*;

impl TurnServer {
    /// A success response, with MESSAGE-INTEGRITY when `key` is given.
    pub(super) fn respond(
        &mut self,
        out: &mut Outbox,
        tuple: FiveTuple,
        req: &Message,
        key: Option<&IntegrityKey>,
        attrs: impl FnOnce(&mut MessageWriteMutSlice<'_>, TransactionId) -> Result<(), StunWriteError>,
    ) {
        self.write_response(out, tuple, req, None, key, attrs);
    }

    /// An error response with `code`. MESSAGE-INTEGRITY is added when `key`
    /// is given (the request was authenticated); 400, 401, 420 and 438 never
    /// carry it (RFC 8489 §9.2.4).
    pub(super) fn error(
        &mut self,
        out: &mut Outbox,
        tuple: FiveTuple,
        req: &Message,
        code: u16,
        key: Option<&IntegrityKey>,
        attrs: impl FnOnce(&mut MessageWriteMutSlice<'_>, TransactionId) -> Result<(), StunWriteError>,
    ) {
        let key = key.filter(|_| !matches!(code, 400 | 401 | 420 | 438));
        self.write_response(out, tuple, req, Some(code), key, attrs);
    }

    pub(super) fn write_response(
        &mut self,
        out: &mut Outbox,
        tuple: FiveTuple,
        req: &Message,
        code: Option<u16>,
        key: Option<&IntegrityKey>,
        attrs: impl FnOnce(&mut MessageWriteMutSlice<'_>, TransactionId) -> Result<(), StunWriteError>,
    ) {
        let software = self.config.software.as_deref();
        let fingerprint = req.has_attribute(Fingerprint::TYPE);
        out.push_with(Destination::Client(tuple), MAX_MESSAGE, |buf| {
            let w = MessageWriteMutSlice::new(buf);
            let mut w = match code {
                Some(_) => Message::builder_error(req, w),
                None => Message::builder_success(req, w),
            };
            let tid = req.transaction_id();
            let written = (|| -> Result<(), StunWriteError> {
                if let Some(code) = code {
                    w.add_attribute(&ErrorCode::builder(code).build()?)?;
                }
                attrs(&mut w, tid)?;
                if let Some(s) = software {
                    add_software(&mut w, s)?;
                }
                if let Some(key) = key {
                    w.add_message_integrity_with_key(key, IntegrityAlgorithm::Sha1)?;
                }
                if fingerprint {
                    w.add_fingerprint()?;
                }
                Ok(())
            })();
            match written {
                Ok(()) => w.finish(),
                Err(e) => {
                    tracing::warn!("could not write a STUN response: {e}");
                    0
                }
            }
        });
    }
}
