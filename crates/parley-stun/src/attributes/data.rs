//! DATA (RFC 8656 §18.4): the application data of Send and Data indications.

use stun_types::attribute::{
    Attribute, AttributeStaticType, AttributeType, AttributeWrite, AttributeWriteExt, RawAttribute,
};

/// The DATA attribute, borrowing its bytes (written without a copy into the
/// outgoing message; read straight from the incoming one with
/// `Message::raw_attribute`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Data<'a>(pub &'a [u8]);

impl Data<'_> {
    pub(crate) const TYPE_: AttributeType = AttributeType::new(0x0013);
}

impl AttributeStaticType for Data<'_> {
    const TYPE: AttributeType = Data::TYPE_;
}

impl Attribute for Data<'_> {
    fn get_type(&self) -> AttributeType {
        Data::TYPE_
    }
    fn length(&self) -> u16 {
        self.0.len() as u16
    }
}

impl AttributeWrite for Data<'_> {
    fn to_raw(&self) -> RawAttribute<'_> {
        RawAttribute::new(Data::TYPE_, self.0)
    }
    fn write_into_unchecked(&self, dest: &mut [u8]) {
        self.write_header_unchecked(dest);
        let n = self.0.len();
        dest[4..4 + n].copy_from_slice(self.0);
        for b in &mut dest[4 + n..] {
            *b = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_padded() {
        let raw = RawAttribute::from(&Data(b"hello"));
        assert_eq!(
            raw.to_bytes(),
            [
                0x00, 0x13, 0x00, 0x05, b'h', b'e', b'l', b'l', b'o', 0, 0, 0
            ]
        );
    }
}
