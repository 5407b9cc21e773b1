//! macrolake
