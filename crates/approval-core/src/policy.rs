//! The approval decision, as a pure function over the facts gathered for one mail.
